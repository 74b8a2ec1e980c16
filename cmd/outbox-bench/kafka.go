package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// ---------------------------------------------------------------------------
// Kafka helpers

// saramaAdminConfig is the configuration of the benchmark's own metadata
// and offset queries.
func saramaAdminConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = "outbox-bench-admin"
	c.Version = sarama.V2_8_0_0
	return c
}

// ensureTopics creates the topics that do not exist on the cluster (with
// partitions partitions and the broker's default replication factor) and
// returns the partition count of the first.
func ensureTopics(brokers []string, partitions int, topics []string) (int, error) {
	cl, err := sarama.NewClient(brokers, saramaAdminConfig())
	if err != nil {
		return 0, fmt.Errorf("connecting to Kafka: %w", err)
	}
	defer cl.Close()
	admin, err := sarama.NewClusterAdminFromClient(cl)
	if err != nil {
		return 0, err
	}
	for _, t := range topics {
		err := admin.CreateTopic(t, &sarama.TopicDetail{NumPartitions: int32(partitions), ReplicationFactor: -1}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return 0, fmt.Errorf("creating topic %s: %w", t, err)
		}
	}
	for attempt := 0; ; attempt++ {
		_ = cl.RefreshMetadata(topics...)
		ps, err := cl.Partitions(topics[0])
		if err == nil && len(ps) > 0 {
			return len(ps), nil
		}
		if attempt == 50 {
			return 0, fmt.Errorf("topic %s has no partitions after creation: %v", topics[0], err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// endOffsets returns the end offset of every partition of topic.
func endOffsets(brokers []string, topic string) (map[int32]int64, error) {
	cl, err := sarama.NewClient(brokers, saramaAdminConfig())
	if err != nil {
		return nil, fmt.Errorf("connecting to Kafka: %w", err)
	}
	defer cl.Close()
	ps, err := cl.Partitions(topic)
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	out := make(map[int32]int64, len(ps))
	for _, p := range ps {
		off, err := cl.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return nil, fmt.Errorf("end offset of %s/%d: %w", topic, p, err)
		}
		out[p] = off
	}
	return out, nil
}

// sumOffsets adds up the end offsets.
func sumOffsets(m map[int32]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// topicGrowth returns how many records were appended to topic since the
// end offsets before.
func topicGrowth(brokers []string, topic string, before map[int32]int64) (int64, error) {
	after, err := endOffsets(brokers, topic)
	if err != nil {
		return 0, err
	}
	return sumOffsets(after) - sumOffsets(before), nil
}
