package kafka

import (
	"testing"

	"github.com/IBM/sarama"
)

// The golden values are those of Kafka's own UtilsTest.testMurmur2.
func TestMurmur2(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want int32
	}{
		{[]byte("21"), -973932308},
		{[]byte("foobar"), -790332482},
		{[]byte("a-little-bit-long-string"), -985981536},
		{[]byte("a-little-bit-longer-string"), -1486304829},
		{[]byte("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971},
		{[]byte{'a', 'b', 'c'}, 479470107},
	} {
		if got := Murmur2(tc.in); got != tc.want {
			t.Errorf("Murmur2(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestMurmur2Partitioner(t *testing.T) {
	p := NewMurmur2Partitioner("t")
	if !p.RequiresConsistency() {
		t.Error("RequiresConsistency() = false, want true")
	}
	dyn, ok := p.(sarama.DynamicConsistencyPartitioner)
	if !ok {
		t.Fatal("not a sarama.DynamicConsistencyPartitioner")
	}
	for _, key := range []string{"21", "foobar", "a-little-bit-long-string", "abc", "", "order-42"} {
		for _, n := range []int32{1, 3, 7, 12} {
			msg := &sarama.ProducerMessage{Key: sarama.ByteEncoder(key)}
			got, err := p.Partition(msg, n)
			if err != nil {
				t.Fatal(err)
			}
			want := (Murmur2([]byte(key)) & 0x7fffffff) % n
			if got != want || Murmur2Partition([]byte(key), n) != want {
				t.Errorf("key %q, %d partitions: got %d, want %d", key, n, got, want)
			}
			if !dyn.MessageRequiresConsistency(msg) {
				t.Errorf("key %q: MessageRequiresConsistency = false", key)
			}
		}
	}
	// Known placements: murmur2("foobar") = -790332482, & 0x7fffffff =
	// 1357151166, which is 0 mod 3 and 6 mod 10.
	for n, want := range map[int32]int32{3: 0, 10: 6} {
		if got := Murmur2Partition([]byte("foobar"), n); got != want {
			t.Errorf("Murmur2Partition(foobar, %d) = %d, want %d", n, got, want)
		}
	}

	// Keyless records take the partitions in turn.
	keyless := &sarama.ProducerMessage{}
	if dyn.MessageRequiresConsistency(keyless) {
		t.Error("keyless: MessageRequiresConsistency = true")
	}
	var got []int32
	for range 7 {
		n, err := p.Partition(keyless, 3)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
	}
	want := []int32{0, 1, 2, 0, 1, 2, 0}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("keyless partitions = %v, want %v", got, want)
		}
	}
	if _, err := p.Partition(keyless, 0); err == nil {
		t.Error("0 partitions: no error")
	}
}

func BenchmarkMurmur2(b *testing.B) {
	key := []byte("0192f0c4-7a8e-7c3b-9f1e-4b5a6c7d8e9f")
	for b.Loop() {
		Murmur2(key)
	}
}
