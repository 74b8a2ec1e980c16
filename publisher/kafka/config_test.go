package kafka

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/IBM/sarama"

	"github.com/outboxrelay/outbox"
)

const secret = "s3cr3t-Pa55w0rd"

func TestConfigInvalid(t *testing.T) {
	ok := Config{Brokers: []string{"127.0.0.1:9092"}}
	for _, tc := range []struct {
		field string
		edit  func(*Config)
	}{
		{"Brokers", func(c *Config) { c.Brokers = nil }},
		{"Brokers[1]", func(c *Config) { c.Brokers = append(c.Brokers, "kafka") }},
		{"Brokers[0]", func(c *Config) { c.Brokers = []string{"kafka:http"} }},
		{"Version", func(c *Config) { c.Version = "three" }},
		{"Version", func(c *Config) { c.Version = "0.10.2.0" }},
		{"Compression", func(c *Config) { c.Compression = "brotli" }},
		{"Compression", func(c *Config) { c.Compression, c.Version = "zstd", "2.0.0" }},
		{"Partitioner", func(c *Config) { c.Partitioner = "crc32" }},
		{"MaxMessageBytes", func(c *Config) { c.MaxMessageBytes = -1 }},
		{"MaxMessageBytes", func(c *Config) { c.MaxMessageBytes = 200 << 20 }},
		{"Timeout", func(c *Config) { c.Timeout = -1 }},
		{"RetryMax", func(c *Config) { c.RetryMax = -1 }},
		{"RetryBackoff", func(c *Config) { c.RetryBackoff = -1 }},
		{"SASL.Mechanism", func(c *Config) { c.SASL = SASL{Mechanism: "GSSAPI", User: "u", Password: secret} }},
		{"SASL.Mechanism", func(c *Config) { c.SASL = SASL{User: "u", Password: secret} }},
		{"SASL.User", func(c *Config) { c.SASL = SASL{Mechanism: MechanismSCRAMSHA512, Password: secret} }},
		{"SASL.Password", func(c *Config) { c.SASL = SASL{Mechanism: MechanismPlain, User: "u"} }},
		{"Sarama", func(c *Config) {
			c.SASL = SASL{Mechanism: MechanismSCRAMSHA256, User: "u", Password: secret}
			c.Sarama = func(sc *sarama.Config) { sc.Net.MaxOpenRequests = 5 } // idempotence needs 1
		}},
		{"Sarama", func(c *Config) { c.Sarama = func(sc *sarama.Config) { sc.Producer.RequiredAcks = sarama.WaitForLocal } }},
	} {
		cfg := ok
		tc.edit(&cfg)
		for _, err := range []error{cfg.Validate(), func() error { _, err := New(cfg); return err }()} {
			if err == nil {
				t.Errorf("%s: no error", tc.field)
				continue
			}
			msg := err.Error()
			if !errors.Is(err, ErrInvalidConfig) || !errors.Is(err, outbox.ErrInvalidConfig) {
				t.Errorf("%s: %q does not wrap ErrInvalidConfig", tc.field, msg)
			}
			if !strings.HasPrefix(msg, "kafka: "+tc.field+" ") {
				t.Errorf("%s: %q does not name the field", tc.field, msg)
			}
			if strings.Contains(msg, secret) {
				t.Errorf("%s: %q has the password", tc.field, msg)
			}
		}
	}
	err := Config{Brokers: ok.Brokers, Compression: "brotli"}.Validate()
	if want := `kafka: Compression must be one of none, gzip, snappy, lz4, zstd; got "brotli"`; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestConfigValid(t *testing.T) {
	brokers := []string{"127.0.0.1:9092", "[::1]:9093", "kafka-0.kafka:9094"}
	for _, cfg := range []Config{
		{Brokers: brokers},
		{Brokers: brokers, Version: "3.7.0", Compression: "zstd", Partitioner: "murmur2"},
		{Brokers: brokers, Version: "0.11.0.0", Compression: "lz4", SASL: SASL{Mechanism: MechanismPlain, User: "u", Password: secret}},
		{Brokers: brokers, Compression: "gzip", SASL: SASL{Mechanism: MechanismSCRAMSHA256, User: "u", Password: secret}},
		{Brokers: brokers, Compression: "snappy", SASL: SASL{Mechanism: MechanismSCRAMSHA512, User: "u", Password: secret}},
	} {
		if err := cfg.Validate(); err != nil {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
}

func TestConfigSarama(t *testing.T) {
	sc, err := Config{Brokers: []string{"b:9092"}}.sarama()
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case sc.ClientID != DefaultClientID:
		t.Errorf("ClientID = %q", sc.ClientID)
	case sc.Version != sarama.V2_8_0_0:
		t.Errorf("Version = %s", sc.Version)
	case sc.Producer.RequiredAcks != sarama.WaitForAll, !sc.Producer.Idempotent, sc.Net.MaxOpenRequests != 1:
		t.Errorf("not an idempotent producer waiting for all replicas")
	case !sc.Producer.Return.Successes, !sc.Producer.Return.Errors:
		t.Errorf("successes or errors not returned")
	case sc.Producer.Compression != sarama.CompressionNone:
		t.Errorf("Compression = %v", sc.Producer.Compression)
	case sc.Producer.MaxMessageBytes != 1<<20:
		t.Errorf("MaxMessageBytes = %d", sc.Producer.MaxMessageBytes)
	case sc.Producer.Timeout != DefaultTimeout, sc.Net.DialTimeout != DefaultTimeout:
		t.Errorf("Timeout = %s", sc.Producer.Timeout)
	case sc.Producer.Retry.Max != 10, sc.Producer.Retry.Backoff != DefaultRetryBackoff:
		t.Errorf("Retry = %+v", sc.Producer.Retry)
	case sc.Net.TLS.Enable, sc.Net.SASL.Enable:
		t.Errorf("TLS or SASL on by default")
	}

	// The hook runs last.
	sc, err = Config{Brokers: []string{"b:9092"}, Compression: "gzip", Sarama: func(sc *sarama.Config) {
		sc.Producer.Compression = sarama.CompressionLZ4
		sc.Producer.Flush.Messages = 100
		sc.Producer.Flush.Frequency = 5e6
	}}.sarama()
	if err != nil {
		t.Fatal(err)
	}
	if sc.Producer.Compression != sarama.CompressionLZ4 || sc.Producer.Flush.Messages != 100 {
		t.Errorf("hook not applied: %v %d", sc.Producer.Compression, sc.Producer.Flush.Messages)
	}

	sc, err = Config{Brokers: []string{"b:9092"}, SASL: SASL{Mechanism: MechanismSCRAMSHA512, User: "u", Password: secret}}.sarama()
	if err != nil {
		t.Fatal(err)
	}
	if !sc.Net.SASL.Enable || sc.Net.SASL.Mechanism != sarama.SASLTypeSCRAMSHA512 || sc.Net.SASL.SCRAMClientGeneratorFunc == nil {
		t.Errorf("SASL = %+v", sc.Net.SASL)
	}
}

func TestSASLNotPrinted(t *testing.T) {
	cfg := Config{Brokers: []string{"b:9092"}, SASL: SASL{Mechanism: MechanismPlain, User: "alice", Password: secret}}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		s := fmt.Sprintf(verb, cfg)
		if strings.Contains(s, secret) {
			t.Errorf("%s prints the password: %s", verb, s)
		}
		if !strings.Contains(s, "alice") {
			t.Errorf("%s hides the user: %s", verb, s)
		}
	}
}
