package kafka

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/IBM/sarama"

	"github.com/outboxrelay/outbox"
)

// brokerMaxMessageBytesName is the broker setting that bounds a record
// batch.
const brokerMaxMessageBytesName = "message.max.bytes"

// maxMessageBytes returns the limit the producer uses: cfg.MaxMessageBytes
// when set, else the broker's message.max.bytes, else (with a warning)
// outbox.DefaultMaxMessageBytes.
func maxMessageBytes(cfg Config, client sarama.Client) int {
	if cfg.MaxMessageBytes != 0 {
		return cfg.MaxMessageBytes
	}
	n, err := describeMaxMessageBytes(client)
	if err != nil {
		log := cfg.Logger
		if log == nil {
			log = slog.Default()
		}
		log.Warn("kafka: cannot read the broker's message.max.bytes; using the default: set MaxMessageBytes (--kafka-max-message-bytes) to the broker's value",
			"default", outbox.DefaultMaxMessageBytes, "err", redact(err.Error(), cfg.SASL.Password))
		return outbox.DefaultMaxMessageBytes
	}
	return n
}

// describeMaxMessageBytes asks the controller for its message.max.bytes.
// It does not close client.
func describeMaxMessageBytes(client sarama.Client) (int, error) {
	controller, err := client.Controller()
	if err != nil {
		return 0, fmt.Errorf("finding the controller: %w", err)
	}
	// admin is not closed: its Close would close client, which the
	// caller owns.
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return 0, err
	}
	results, err := admin.DescribeConfigs([]*sarama.ConfigResource{{
		Type:        sarama.BrokerResource,
		Name:        strconv.Itoa(int(controller.ID())),
		ConfigNames: []string{brokerMaxMessageBytesName},
	}}, sarama.DescribeConfigsOptions{})
	if err != nil {
		return 0, err
	}
	var entries []sarama.ConfigEntry
	for _, r := range results {
		if r.ErrorCode != sarama.ErrNoError {
			return 0, &sarama.DescribeConfigError{Err: r.ErrorCode, ErrMsg: r.ErrorMsg}
		}
		entries = append(entries, r.Configs...)
	}
	for _, e := range entries {
		if e.Name != brokerMaxMessageBytesName {
			continue
		}
		n, err := strconv.Atoi(e.Value)
		if err != nil || n < 1 || n >= int(sarama.MaxRequestSize) {
			return 0, fmt.Errorf("the broker's %s is %q: not between 1 and %d", brokerMaxMessageBytesName, e.Value, sarama.MaxRequestSize-1)
		}
		return n, nil
	}
	return 0, errors.New("the broker did not report " + brokerMaxMessageBytesName)
}
