package outbox

import (
	"fmt"
	"log/slog"
	"os"
	"time"
	"unicode/utf8"

	"github.com/outboxrelay/outbox/dialect"
)

// Defaults of RelayConfig.
const (
	DefaultBatchSize        = 1000
	DefaultBatchBytes       = 16 << 20
	DefaultPollInterval     = 250 * time.Millisecond
	DefaultMinPollInterval  = 5 * time.Millisecond
	DefaultLeaseDuration    = 15 * time.Second
	DefaultMaxAttempts      = 10
	DefaultRetryBackoff     = time.Second
	DefaultRetryBackoffMax  = 5 * time.Minute
	DefaultOutageBackoff    = 2 * time.Second
	DefaultOutageBackoffMax = time.Minute
	DefaultProbeInterval    = 500 * time.Millisecond
	DefaultPublishTimeout   = 30 * time.Second
	DefaultShutdownTimeout  = 10 * time.Second
)

// outcomeTimeout bounds one database statement of the relay that has no
// other deadline: recording a batch's outcome, preparing the shard table.
// On MySQL/MariaDB the dialect passes it on to the server.
const outcomeTimeout = 30 * time.Second

// RelayConfig configures a Relay. A zero field means its default.
type RelayConfig struct {
	// Dialect is the SQL dialect of the database. Required.
	Dialect dialect.Dialect
	// NumShards must equal the Outbox's NumShards. Default 64.
	NumShards int
	// ID names this relay in leases and logs; unique among live relays.
	// Default: hostname-pid-random.
	ID string
	// BatchSize is the most messages read and published per batch.
	// Default 1000.
	BatchSize int
	// BatchBytes bounds the payload of a batch: a read stops after the
	// record that brings the sum of key, value and header sizes to
	// BatchBytes. With the batch read ahead under a backlog, the relay holds
	// at most two batches. Default 16 MiB.
	BatchBytes int
	// PollInterval is the longest wait between two reads of an idle outbox.
	// The relay polls every MinPollInterval after traffic and doubles the
	// wait while the outbox stays empty, up to PollInterval. Default 250ms.
	PollInterval time.Duration
	// MinPollInterval is the shortest wait after an empty read. Default 5ms.
	MinPollInterval time.Duration
	// Wake, when set, wakes an idle relay at once (for example on a
	// PostgreSQL notification). Default: none, polling only.
	Wake <-chan struct{}
	// LeaseDuration is how long a shard lease lasts without renewal: how
	// long a crashed relay's shards wait before others take them over.
	// Default 15s.
	LeaseDuration time.Duration
	// RenewInterval is how often leases are renewed and shares rebalanced.
	// It must be below LeaseDuration/2. Default LeaseDuration/3.
	RenewInterval time.Duration
	// MaxAttempts is how many failed attempts move a message to the
	// dead-letter table. Default 10.
	MaxAttempts int
	// RetryBackoff and RetryBackoffMax bound the wait before another attempt
	// of a failed message: RetryBackoff * 2^(attempts-1), capped, with
	// jitter. Defaults 1s and 5m.
	RetryBackoff, RetryBackoffMax time.Duration
	// OutageBackoff and OutageBackoffMax bound the relay's pause while the
	// broker is unavailable: doubling from OutageBackoff up to
	// OutageBackoffMax. Defaults 2s and 60s.
	OutageBackoff, OutageBackoffMax time.Duration
	// ProbeInterval is how often, while it backs off from an outage, the
	// relay asks a publisher that is a Prober whether the broker is back;
	// it resumes at the first yes, so publishing starts again within about
	// ProbeInterval of the broker's return, however long the outage was.
	// Default 500ms.
	ProbeInterval time.Duration
	// PublishTimeout bounds one Publish call. Default 30s.
	PublishTimeout time.Duration
	// ShutdownTimeout is how long Run waits for the in-flight batch after
	// its context ends, before abandoning it. Default 10s.
	ShutdownTimeout time.Duration
	// Logger receives the relay's logs. Payloads are never logged.
	// Default: slog.Default().
	Logger *slog.Logger
	// Observer, when set, sees every batch, publish call, record outcome,
	// lease change, backoff and probe (see RelayObserver; prommetrics
	// implements it). Default: none, at no cost.
	Observer RelayObserver
	// Tracer, when set, traces the publication of each record (see
	// RecordTracer; outboxotel implements it with OpenTelemetry).
	// Default: none, at no cost.
	Tracer RecordTracer
}

// Validate reports the first invalid field as a *ConfigError (errors.Is
// ErrInvalidConfig), as NewRelay would, after filling in the defaults. It
// touches neither the database nor the broker.
func (c RelayConfig) Validate() error {
	_, err := c.withDefaults()
	return err
}

// withDefaults fills defaults and validates, naming the wrong field.
func (c RelayConfig) withDefaults() (RelayConfig, error) {
	bad := func(field, format string, args ...any) (RelayConfig, error) {
		return c, &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if c.Dialect == nil {
		return bad("Dialect", "is required")
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defInt(&c.NumShards, DefaultNumShards)
	defInt(&c.BatchSize, DefaultBatchSize)
	defInt(&c.BatchBytes, DefaultBatchBytes)
	defInt(&c.MaxAttempts, DefaultMaxAttempts)
	def(&c.PollInterval, DefaultPollInterval)
	def(&c.MinPollInterval, min(DefaultMinPollInterval, c.PollInterval))
	def(&c.LeaseDuration, DefaultLeaseDuration)
	def(&c.RenewInterval, c.LeaseDuration/3)
	def(&c.RetryBackoff, DefaultRetryBackoff)
	def(&c.RetryBackoffMax, max(DefaultRetryBackoffMax, c.RetryBackoff))
	def(&c.OutageBackoff, DefaultOutageBackoff)
	def(&c.OutageBackoffMax, max(DefaultOutageBackoffMax, c.OutageBackoff))
	def(&c.ProbeInterval, DefaultProbeInterval)
	def(&c.PublishTimeout, DefaultPublishTimeout)
	def(&c.ShutdownTimeout, DefaultShutdownTimeout)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ID == "" {
		host, _ := os.Hostname()
		c.ID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), NewMessageID()[24:])
	}
	switch {
	case c.NumShards < 1 || c.NumShards > MaxNumShards:
		return bad("NumShards", "must be between 1 and %d, got %d", MaxNumShards, c.NumShards)
	case len(c.ID) > 255 || !utf8.ValidString(c.ID):
		return bad("ID", "must be at most 255 bytes of UTF-8")
	case c.BatchSize < 1 || c.BatchSize > 100_000:
		return bad("BatchSize", "must be between 1 and 100000, got %d", c.BatchSize)
	case c.BatchBytes < 1:
		return bad("BatchBytes", "must be positive, got %d", c.BatchBytes)
	case c.MaxAttempts < 1:
		return bad("MaxAttempts", "must be at least 1, got %d", c.MaxAttempts)
	case c.MinPollInterval <= 0 || c.PollInterval < c.MinPollInterval:
		return bad("PollInterval", "(%s) cannot be shorter than MinPollInterval (%s), and both must be positive", c.PollInterval, c.MinPollInterval)
	case c.LeaseDuration < 100*time.Millisecond:
		return bad("LeaseDuration", "must be at least 100ms, got %s", c.LeaseDuration)
	case c.RenewInterval <= 0 || c.RenewInterval > c.LeaseDuration/2:
		return bad("RenewInterval", "(%s) must be positive and at most half of LeaseDuration (%s)", c.RenewInterval, c.LeaseDuration)
	case c.RetryBackoff < 0 || c.RetryBackoffMax < c.RetryBackoff:
		return bad("RetryBackoffMax", "(%s) cannot be shorter than RetryBackoff (%s)", c.RetryBackoffMax, c.RetryBackoff)
	case c.OutageBackoff < 0 || c.OutageBackoffMax < c.OutageBackoff:
		return bad("OutageBackoffMax", "(%s) cannot be shorter than OutageBackoff (%s)", c.OutageBackoffMax, c.OutageBackoff)
	case c.ProbeInterval < 0:
		return bad("ProbeInterval", "must be positive, got %s", c.ProbeInterval)
	case c.PublishTimeout < 0:
		return bad("PublishTimeout", "must be positive, got %s", c.PublishTimeout)
	case c.ShutdownTimeout < 0:
		return bad("ShutdownTimeout", "must be positive, got %s", c.ShutdownTimeout)
	}
	return c, nil
}
