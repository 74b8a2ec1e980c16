package kafka

import (
	"github.com/IBM/sarama"
)

// Murmur2 is the 32-bit murmur2 hash exactly as Kafka's Java client
// computes it (org.apache.kafka.common.utils.Utils.murmur2), which its
// default partitioner applies to a record's key.
func Murmur2(data []byte) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	length := len(data)
	h := seed ^ uint32(length)
	for i := 0; i+4 <= length; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[length&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// Murmur2Partition is the partition the Java client's default partitioner
// gives a record with key among numPartitions:
// (murmur2(key) & 0x7fffffff) % numPartitions. numPartitions must be
// positive.
func Murmur2Partition(key []byte, numPartitions int32) int32 {
	return (Murmur2(key) & 0x7fffffff) % numPartitions
}

// murmur2Partitioner partitions keyed records like the Java client and
// spreads keyless ones round-robin.
type murmur2Partitioner struct {
	next int32 // Sarama calls a topic's partitioner from one goroutine
}

// NewMurmur2Partitioner returns a sarama.Partitioner that puts keyed
// records where Kafka's Java client does (see Murmur2Partition) and keyless
// records on the partitions in turn. Its signature is a
// sarama.PartitionerConstructor; Config.Partitioner "murmur2" selects it.
func NewMurmur2Partitioner(topic string) sarama.Partitioner {
	return &murmur2Partitioner{}
}

// Partition returns msg's partition.
func (p *murmur2Partitioner) Partition(msg *sarama.ProducerMessage, numPartitions int32) (int32, error) {
	if numPartitions <= 0 {
		return -1, sarama.ErrInvalidPartition
	}
	if msg.Key == nil {
		n := p.next % numPartitions
		p.next = (n + 1) % numPartitions
		return n, nil
	}
	key, err := msg.Key.Encode()
	if err != nil {
		return -1, err
	}
	return Murmur2Partition(key, numPartitions), nil
}

// RequiresConsistency is true: a key always maps to the same partition,
// even while that partition has no leader.
func (p *murmur2Partitioner) RequiresConsistency() bool { return true }

// MessageRequiresConsistency is false for keyless records, which Sarama may
// then send to any partition that has a leader.
func (p *murmur2Partitioner) MessageRequiresConsistency(msg *sarama.ProducerMessage) bool {
	return msg.Key != nil
}
