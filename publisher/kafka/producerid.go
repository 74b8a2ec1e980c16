package kafka

import (
	"math"

	"github.com/IBM/sarama"
)

// producerIDs is the idempotent producer's identity and the next sequence
// number of each partition. The broker appends a batch only if its first
// sequence number follows the last one it appended for the producer id and
// partition, and keeps a batch it already has only once. Used under
// Publisher.mu.
type producerIDs struct {
	id    int64
	epoch int16
	valid bool // false: get a new id before the next batch
	seq   map[tp]int32
}

// set takes the producer id of res. A new id starts every partition's
// sequence at 0.
func (s *producerIDs) set(res *sarama.InitProducerIDResponse) {
	s.id, s.epoch, s.valid, s.seq = res.ProducerID, res.ProducerEpoch, true, map[tp]int32{}
}

// initProducerID asks a broker for a new producer id. Unlike Sarama's
// Client.InitProducerID it does not forget a broker that fails (which
// leaves a client with none after an outage): it closes the connection,
// and when the client knows no broker it refreshes the metadata of topics,
// which brings back the bootstrap brokers.
func initProducerID(client sarama.Client, topics []string) (*sarama.InitProducerIDResponse, error) {
	b := client.LeastLoadedBroker()
	if b == nil {
		if err := client.RefreshMetadata(topics...); err != nil {
			return nil, err
		}
		if b = client.LeastLoadedBroker(); b == nil {
			return nil, sarama.ErrOutOfBrokers
		}
	}
	res, err := b.InitProducerID(&sarama.InitProducerIDRequest{Version: initProducerIDVersion(client.Config().Version)})
	if err != nil {
		_ = b.Close()
		return nil, err
	}
	if !errorsIsNone(res.Err) {
		return nil, res.Err
	}
	return res, nil
}

// initProducerIDVersion is the InitProducerID request version for v, as
// Sarama's client chooses it.
func initProducerIDVersion(v sarama.KafkaVersion) int16 {
	switch {
	case v.IsAtLeast(sarama.V2_7_0_0):
		return 4
	case v.IsAtLeast(sarama.V2_5_0_0):
		return 3
	case v.IsAtLeast(sarama.V2_4_0_0):
		return 2
	case v.IsAtLeast(sarama.V2_0_0_0):
		return 1
	}
	return 0
}

// invalidate makes the next batch get a new producer id: the sequence of
// some partition is not known any more (a batch's outcome is unknown, or
// the broker refused the sequence).
func (s *producerIDs) invalidate() { s.valid = false }

// next returns the producer id, epoch and the next sequence number of t.
func (s *producerIDs) next(t tp) (int64, int16, int32) {
	return s.id, s.epoch, s.seq[t]
}

// advance moves t's sequence past n appended records; it wraps to 0 after
// math.MaxInt32, as Kafka's does.
func (s *producerIDs) advance(t tp, n int) {
	s.seq[t] = int32((int64(s.seq[t]) + int64(n)) % (math.MaxInt32 + 1))
}
