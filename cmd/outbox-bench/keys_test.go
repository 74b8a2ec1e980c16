package main

import (
	"slices"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/outboxrelay/outbox"
)

// TestKeyPicker: uniform is today's round robin; zipf is the same sequence
// for the same seed, within the keys, with the share of the hottest key
// that --key-skew's help states (for --keys 1000: 18%).
func TestKeyPicker(t *testing.T) {
	p := newKeyPicker(skewUniform, 4, 99, 1, 3)
	var got []int
	for range 5 {
		got = append(got, p.pick())
	}
	if want := []int{1, 0, 3, 2, 1}; !slices.Equal(got, want) {
		t.Errorf("uniform from 1 in steps of 3 over 4 keys: %v, want %v", got, want)
	}

	const n, keys = 100_000, 1000
	draw := func(seed uint64) []int {
		p := newKeyPicker(skewZipf, keys, seed, 0, 1)
		out := make([]int, n)
		for i := range out {
			out[i] = p.pick()
		}
		return out
	}
	a, b := draw(7), draw(7)
	if !slices.Equal(a, b) {
		t.Fatal("zipf: two pickers with the same seed disagree")
	}
	if slices.Equal(a, draw(8)) {
		t.Error("zipf: another seed gives the same keys")
	}
	count := make([]int, keys)
	for _, k := range a {
		if k < 0 || k >= keys {
			t.Fatalf("zipf drew key %d of %d", k, keys)
		}
		count[k]++
	}
	if share := float64(count[0]) / n; share < 0.16 || share > 0.20 {
		t.Errorf("zipf: the hottest key has %.3f of the messages, want about 0.18", share)
	}
	for k := 1; k < 10; k++ {
		if count[k] > count[k-1] {
			t.Errorf("zipf: key-%d drawn %d times, more than key-%d (%d)", k, count[k], k-1, count[k-1])
		}
	}
}

// TestOrderCheckSkewedKeys: the read-back's per-key order check works for
// a skewed load, where one key holds a large share of the messages and
// some keys none: a clean delivery has no violation, and one message of
// the hot key delivered after a later one is one violation.
func TestOrderCheckSkewedKeys(t *testing.T) {
	const n, keys, partitions = 5000, 50, 4
	l := &loadedMessages{index: map[string]int32{}}
	p := newKeyPicker(skewZipf, keys, 1, 0, 1)
	keyNum := map[int]int32{} // as readLoaded numbers the keys it meets
	var ids []string
	for i := range n {
		k := p.pick()
		num, ok := keyNum[k]
		if !ok {
			num = int32(len(keyNum))
			keyNum[k] = num
		}
		id := "m" + strconv.Itoa(i)
		l.index[id] = int32(i)
		l.key = append(l.key, num)
		ids = append(ids, id)
	}
	l.keys = len(keyNum)
	count := make([]int, l.keys)
	for _, k := range l.key {
		count[k]++
	}
	hot := int32(slices.Index(count, slices.Max(count)))
	if share := float64(count[hot]) / n; share < 0.2 {
		t.Fatalf("the hottest key has %.2f of the messages: not a skewed load", share)
	}
	// deliver returns the check of the messages in the order given, each
	// on the partition of its key.
	deliver := func(order []int) deliveryCheck {
		t.Helper()
		var recs [partitions][]int
		for _, pos := range order {
			part := int(l.key[pos]) % partitions
			recs[part] = append(recs[part], pos)
		}
		from, to := map[int32]int64{}, map[int32]int64{}
		for part := range partitions {
			from[int32(part)], to[int32(part)] = 0, int64(len(recs[part]))
		}
		rs, err := newReadState("t", from, to, l)
		if err != nil {
			t.Fatal(err)
		}
		for part, list := range recs {
			for off, pos := range list {
				rs.add(&kgo.Record{Partition: int32(part), Offset: int64(off),
					Headers: []kgo.RecordHeader{{Key: outbox.HeaderID, Value: []byte(ids[pos])}}})
			}
		}
		return rs.finish()
	}
	inOrder := make([]int, n)
	for i := range inOrder {
		inOrder[i] = i
	}
	if d := deliver(inOrder); d.OrderViolations != 0 || d.Lost != 0 || d.Duplicates != 0 || d.SplitKeys != 0 {
		t.Errorf("clean skewed delivery: %+v", d)
	}
	// Swap the first two messages of the hot key.
	first, second := -1, -1
	for i := range n {
		if l.key[i] == hot {
			if first < 0 {
				first = i
			} else {
				second = i
				break
			}
		}
	}
	swapped := slices.Clone(inOrder)
	swapped[first], swapped[second] = swapped[second], swapped[first]
	if d := deliver(swapped); d.OrderViolations != 1 || d.Lost != 0 {
		t.Errorf("hot key's first two swapped: %+v, want 1 order violation", d)
	}
}
