package kafka

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/outboxrelay/outbox"
)

// Defaults of Config.
const (
	DefaultClientID     = "outbox-relay"
	DefaultVersion      = "2.8.0"
	DefaultCompression  = "none"
	DefaultPartitioner  = "hash"
	DefaultTimeout      = 10 * time.Second
	DefaultRetryMax     = 10
	DefaultRetryBackoff = 100 * time.Millisecond
)

// SASL mechanisms.
const (
	MechanismPlain       = "PLAIN"
	MechanismSCRAMSHA256 = "SCRAM-SHA-256"
	MechanismSCRAMSHA512 = "SCRAM-SHA-512"
)

// minVersion is the oldest Kafka the publisher works with: the idempotent
// producer and record headers need 0.11.
var minVersion = sarama.V0_11_0_0

// configError names the wrong field of a Config.
type configError struct {
	field string
	msg   string // starts with the field's name
}

func (e *configError) Error() string { return "kafka: " + e.msg }

// Unwrap returns ErrInvalidConfig and outbox.ErrInvalidConfig.
func (e *configError) Unwrap() []error { return []error{ErrInvalidConfig, outbox.ErrInvalidConfig} }

func badField(field, format string, args ...any) error {
	return &configError{field: field, msg: field + " " + fmt.Sprintf(format, args...)}
}

// Config configures a Publisher. The zero value of every field but
// Brokers means its default.
type Config struct {
	// Brokers are the bootstrap brokers, as host:port. Required.
	Brokers []string
	// ClientID names the client in the brokers' logs, metrics and quotas.
	// Default "outbox-relay".
	ClientID string
	// Version is the oldest Kafka version of the cluster, such as "3.7.0":
	// it caps the protocol versions the client uses (the client also never
	// uses more than a broker advertises). At least "0.11.0.0". Default "2.8.0".
	Version string
	// Compression of record batches: "none", "gzip", "snappy", "lz4" or
	// "zstd" (zstd needs Version 2.1.0 or newer). Default "none".
	Compression string
	// Partitioner chooses the partition of a keyed record: "hash" (Sarama's
	// FNV-1a hash of the key) or "murmur2" (the Java client's: partition =
	// (murmur2(key) & 0x7fffffff) % partitions, so keys land where Java
	// producers, Kafka Connect and Debezium put them). Keyless records go
	// to a random ("hash") or the next ("murmur2") partition. Changing it
	// moves keys to other partitions: their order across the change is
	// lost. Default "hash".
	Partitioner string
	// MaxMessageBytes is the largest record the client sends (Sarama's
	// Producer.MaxMessageBytes, counted as key, value and headers plus up
	// to 36 bytes of record overhead and 10 per header), and the most bytes
	// of records it puts in one batch. A larger record fails permanently.
	//
	// Zero, the default, asks the cluster: New reads the broker setting
	// message.max.bytes (DescribeConfigs; the client needs the
	// DescribeConfigs permission on the cluster) and uses it. If the broker
	// does not answer that, New logs a warning and uses
	// outbox.DefaultMaxMessageBytes. A topic whose max.message.bytes is
	// below the broker's still rejects larger records (permanently); set
	// the field to that topic's limit to have them refused before they are
	// sent. Publisher.MaxMessageBytes reports the limit in use: give it to
	// outbox.Config.MaxMessageBytes, which counts the outbox-id header and
	// the framing, so that a message Enqueue accepts fits.
	MaxMessageBytes int
	// TLS, when set, makes every connection use TLS with this
	// configuration. Default nil: plaintext.
	TLS *tls.Config
	// SASL authenticates the client. Default: no authentication.
	SASL SASL
	// Timeout bounds each request: dialing, writing, and the broker's wait
	// for the in-sync replicas' acknowledgements (the client waits one
	// second longer for the answer). Default 10s.
	Timeout time.Duration
	// RetryMax is how many times Publish sends a record batch again after
	// a retriable answer or none (with the same sequence numbers, so the
	// broker keeps it once) before it reports its records failed and holds
	// back the rest of their partition. Default 10.
	RetryMax int
	// RetryBackoff is the wait before each such retry. Default 100ms.
	RetryBackoff time.Duration
	// Logger receives the publisher's warnings (today only the fallback of
	// MaxMessageBytes). Default slog.Default().
	Logger *slog.Logger
	// Sarama, when set, is called with the Sarama configuration built from
	// the fields above, for settings they do not cover (Net, Metadata,
	// Producer.CompressionLevel, ...); it runs last and the result is
	// validated again. The publisher builds, numbers and retries its own
	// record batches on Sarama's client, so Producer.Flush, Retry, Return
	// and the other AsyncProducer settings have no effect. Default nil.
	Sarama func(*sarama.Config)
}

// SASL holds SASL credentials. Its String and GoString methods hide the
// password, so printing a Config does not reveal it.
type SASL struct {
	// Mechanism is "PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512". Default ""
	// (with User and Password empty): no SASL.
	Mechanism string
	// User is the user name. Required with a Mechanism. Default "".
	User string
	// Password is the password. Required with a Mechanism; never logged nor
	// part of an error. Default "".
	Password string
}

// String describes s without its password.
func (s SASL) String() string {
	pw := ""
	if s.Password != "" {
		pw = "[REDACTED]"
	}
	return fmt.Sprintf("{Mechanism:%s User:%s Password:%s}", s.Mechanism, s.User, pw)
}

// GoString describes s without its password, for the %#v verb.
func (s SASL) GoString() string {
	pw := `""`
	if s.Password != "" {
		pw = `"[REDACTED]"`
	}
	return fmt.Sprintf("kafka.SASL{Mechanism:%q, User:%q, Password:%s}", s.Mechanism, s.User, pw)
}

// Validate reports whether c is usable, without connecting: it returns an
// error wrapping ErrInvalidConfig that names the first wrong field, or nil.
func (c Config) Validate() error {
	_, err := c.sarama()
	return err
}

func (c Config) withDefaults() Config {
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.Version == "" {
		c.Version = DefaultVersion
	}
	if c.Compression == "" {
		c.Compression = DefaultCompression
	}
	if c.Partitioner == "" {
		c.Partitioner = DefaultPartitioner
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = DefaultRetryBackoff
	}
	return c
}

var compressions = map[string]sarama.CompressionCodec{
	"none":   sarama.CompressionNone,
	"gzip":   sarama.CompressionGZIP,
	"snappy": sarama.CompressionSnappy,
	"lz4":    sarama.CompressionLZ4,
	"zstd":   sarama.CompressionZSTD,
}

// sarama validates c and builds the Sarama configuration.
// parsed are the values of a Config that check parses.
type parsed struct {
	version     sarama.KafkaVersion
	codec       sarama.CompressionCodec
	partitioner sarama.PartitionerConstructor
}

// check validates c (with its defaults), naming the field at fault.
func (c Config) check() (parsed, error) {
	var p parsed
	if len(c.Brokers) == 0 {
		return p, badField("Brokers", "is required: give at least one host:port")
	}
	for i, b := range c.Brokers {
		host, port, err := net.SplitHostPort(b)
		if err != nil || host == "" || port == "" {
			return p, badField(fmt.Sprintf("Brokers[%d]", i), "must be host:port; got %q", b)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return p, badField(fmt.Sprintf("Brokers[%d]", i), "has an invalid port; got %q", b)
		}
	}
	version, err := sarama.ParseKafkaVersion(c.Version)
	if err != nil {
		return p, badField("Version", "must be a Kafka version such as \"3.7.0\"; got %q", c.Version)
	}
	if !version.IsAtLeast(minVersion) {
		return p, badField("Version", "must be at least 0.11.0.0 (the idempotent producer and headers need it); got %q", c.Version)
	}
	codec, ok := compressions[c.Compression]
	if !ok {
		return p, badField("Compression", "must be one of none, gzip, snappy, lz4, zstd; got %q", c.Compression)
	}
	if codec == sarama.CompressionZSTD && !version.IsAtLeast(sarama.V2_1_0_0) {
		return p, badField("Compression", "zstd needs Version 2.1.0 or newer; Version is %q", c.Version)
	}
	var partitioner sarama.PartitionerConstructor
	switch c.Partitioner {
	case "hash":
		partitioner = sarama.NewHashPartitioner
	case "murmur2":
		partitioner = NewMurmur2Partitioner
	default:
		return p, badField("Partitioner", "must be one of hash, murmur2; got %q", c.Partitioner)
	}
	if c.MaxMessageBytes < 0 || c.MaxMessageBytes >= int(sarama.MaxRequestSize) {
		return p, badField("MaxMessageBytes", "must be between 1 and %d, or 0 to ask the broker; got %d", sarama.MaxRequestSize-1, c.MaxMessageBytes)
	}
	if c.Timeout < 0 {
		return p, badField("Timeout", "must be positive; got %s", c.Timeout)
	}
	if c.RetryMax < 0 {
		return p, badField("RetryMax", "must be at least 1 (the idempotent producer needs retries); got %d", c.RetryMax)
	}
	if c.RetryBackoff < 0 {
		return p, badField("RetryBackoff", "must be positive; got %s", c.RetryBackoff)
	}
	p.version, p.codec, p.partitioner = version, codec, partitioner
	return p, nil
}

// sarama is the client configuration of c: c's checks, then the settings
// Publish relies on (idempotence, acks=all, one request in flight), then
// the user's Sarama hook, checked again.
func (c Config) sarama() (*sarama.Config, error) {
	c = c.withDefaults()
	p, err := c.check()
	if err != nil {
		return nil, err
	}

	sc := sarama.NewConfig()
	sc.ClientID = c.ClientID
	sc.Version = p.version
	sc.Net.MaxOpenRequests = 1
	sc.Net.DialTimeout = c.Timeout
	sc.Net.WriteTimeout = c.Timeout
	sc.Net.ReadTimeout = c.Timeout + time.Second
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Idempotent = true
	sc.Producer.Timeout = c.Timeout
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Compression = p.codec
	sc.Producer.Partitioner = p.partitioner
	sc.Producer.MaxMessageBytes = c.MaxMessageBytes
	if c.MaxMessageBytes == 0 {
		// New asks the cluster; this stands in until it has.
		sc.Producer.MaxMessageBytes = outbox.DefaultMaxMessageBytes
	}
	sc.Producer.Retry.Max = c.RetryMax
	sc.Producer.Retry.Backoff = c.RetryBackoff
	if c.TLS != nil {
		sc.Net.TLS.Enable = true
		sc.Net.TLS.Config = c.TLS.Clone()
	}
	if err := c.SASL.apply(sc); err != nil {
		return nil, err
	}
	if c.Sarama != nil {
		c.Sarama(sc)
	}
	if err := sc.Validate(); err != nil {
		field := "Sarama"
		if c.Sarama == nil {
			field = "Config"
		}
		return nil, badField(field, "gives an invalid Sarama configuration: %s", redact(err.Error(), c.SASL.Password))
	}
	return sc, nil
}

// apply validates s and sets it in sc.
func (s SASL) apply(sc *sarama.Config) error {
	if s.Mechanism == "" {
		if s.User != "" || s.Password != "" {
			return badField("SASL.Mechanism", "is required with SASL.User and SASL.Password: one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512")
		}
		return nil
	}
	switch s.Mechanism {
	case MechanismPlain:
		sc.Net.SASL.Mechanism = sarama.SASLTypePlaintext
	case MechanismSCRAMSHA256:
		sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
		sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: sha256.New} }
	case MechanismSCRAMSHA512:
		sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
		sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: sha512.New} }
	default:
		return badField("SASL.Mechanism", "must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; got %q", s.Mechanism)
	}
	if s.User == "" {
		return badField("SASL.User", "is required with SASL.Mechanism %s", s.Mechanism)
	}
	if s.Password == "" {
		return badField("SASL.Password", "is required with SASL.Mechanism %s", s.Mechanism)
	}
	sc.Net.SASL.Enable = true
	sc.Net.SASL.Handshake = true
	sc.Net.SASL.User = s.User
	sc.Net.SASL.Password = s.Password
	if sc.Version.IsAtLeast(sarama.V1_0_0_0) {
		sc.Net.SASL.Version = sarama.SASLHandshakeV1
	} else {
		sc.Net.SASL.Version = sarama.SASLHandshakeV0
		sc.ApiVersionsRequest = false // Kafka before 1.0 cannot take both
	}
	return nil
}

// redact removes password from s: a belt to the braces of never formatting
// it, for text that comes from Sarama or a broker.
func redact(s, password string) string {
	if password == "" {
		return s
	}
	return strings.ReplaceAll(s, password, "[REDACTED]")
}
