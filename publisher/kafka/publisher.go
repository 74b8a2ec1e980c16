package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/IBM/sarama"

	"github.com/outboxrelay/outbox"
)

// Publisher publishes outbox records to Kafka as an idempotent producer
// that keeps the order of a key's records within a call (it implements
// outbox.OrderedPublisher): the relay hands it a whole batch, and a hot key
// costs one round trip per record batch, not one per message. Sarama's
// client does the connections, metadata, TLS and SASL; the publisher builds
// the record batches and numbers them itself (see produce.go). It is safe
// for concurrent use; calls are served one at a time.
type Publisher struct {
	client sarama.Client
	conf   *sarama.Config
	cfg    Config // with defaults
	log    *slog.Logger

	maxMessageBytes int
	produceVersion  int16
	partitioners    partitioners

	closing   chan struct{} // closed when Close starts
	closeOnce sync.Once

	// turn is held (a value sent) by a Publish call, and by Close before it
	// closes the client: the producer state below is its holder's alone.
	turn    chan struct{}
	ids     producerIDs
	missing map[string]missingTopic // topics found missing, for a while

	probe prober

	// ignoreOrderRule removes the order rule (tests only: they show that
	// their checks fail without it): after a batch fails, the partition's
	// later records are sent anyway.
	ignoreOrderRule bool
}

var (
	_ outbox.OrderedPublisher = (*Publisher)(nil)
	_ outbox.Prober           = (*Publisher)(nil)
)

// New validates cfg and connects to the cluster. A wrong cfg gives an error
// wrapping ErrInvalidConfig that names the field; a cluster that cannot be
// reached gives one wrapping outbox.ErrUnavailable; credentials the cluster
// refuses give one wrapping ErrAuthentication. With Config.MaxMessageBytes
// 0 it first asks the cluster for its limit (see Config.MaxMessageBytes).
func New(cfg Config) (*Publisher, error) {
	sc, err := cfg.sarama()
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	client, err := sarama.NewClient(cfg.Brokers, sc)
	if err != nil {
		if loginRefused(err, cfg, sc) {
			return nil, fmt.Errorf("%w: the broker answers, but closed the connection during SASL %s authentication of user %q: check the user and password",
				ErrAuthentication, cfg.SASL.Mechanism, cfg.SASL.User)
		}
		return nil, connectError(err, cfg.SASL.Password)
	}
	maxBytes := maxMessageBytes(cfg, client)
	p := &Publisher{
		client:          client,
		conf:            sc,
		cfg:             cfg,
		log:             cfg.Logger,
		maxMessageBytes: maxBytes,
		produceVersion:  produceVersion(sc.Version),
		partitioners:    partitioners{make: sc.Producer.Partitioner},
		closing:         make(chan struct{}),
		turn:            make(chan struct{}, 1),
		missing:         map[string]missingTopic{},
	}
	p.probe = prober{brokers: cfg.Brokers, conf: probeConfig(sc)}
	return p, nil
}

// connectError describes why the client could not connect.
func connectError(err error, password string) error {
	var ce sarama.ConfigurationError
	if errors.As(err, &ce) {
		return badField("Config", "is refused by Sarama: %s", redact(err.Error(), password))
	}
	msg := redact(err.Error(), password)
	if errors.Is(err, sarama.ErrSASLAuthenticationFailed) || errors.Is(err, sarama.ErrUnsupportedSASLMechanism) {
		// Wrong credentials do not get better by waiting: no ErrUnavailable.
		return fmt.Errorf("%w: %s", ErrAuthentication, msg)
	}
	return fmt.Errorf("%w: kafka: connecting: %s", outbox.ErrUnavailable, msg)
}

// loginRefused tells a broker that refuses the SASL credentials by closing
// the connection (as some brokers and proxies do, instead of answering
// SASL_AUTHENTICATION_FAILED) from one that is down: when the connection
// with credentials ended early (err, Sarama's) but a connection without
// them gets an answer to ApiVersions (which Kafka serves before
// authentication), the credentials were refused.
//
// A broker going down can also end a connection early, so the check is
// made on one broker at a time: a new connection with the credentials ends
// early again, and one without them to the same broker is answered.
func loginRefused(err error, cfg Config, sc *sarama.Config) bool {
	if cfg.SASL.Mechanism == "" || !endedEarly(err) {
		return false
	}
	anon := *probeConfig(sc)
	anon.Net.SASL.Enable = false
	anon.Net.SASL.User, anon.Net.SASL.Password = "", ""
	with := prober{conf: probeConfig(sc)}
	without := prober{conf: &anon}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	for _, addr := range cfg.Brokers {
		if endedEarly(with.one(ctx, addr)) && without.one(ctx, addr) == nil {
			return true
		}
	}
	return false
}

// endedEarly reports whether err is a connection that ended without an
// answer.
func endedEarly(err error) bool {
	return err != nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET))
}

// probeTimeout bounds each step of a probe (dial, write, read): a probe is
// a quick question, and one left behind by its caller must not linger.
const probeTimeout = 2 * time.Second

// probeConfig is sc with the probe's short timeouts.
func probeConfig(sc *sarama.Config) *sarama.Config {
	pc := *sc
	pc.Net.DialTimeout = min(sc.Net.DialTimeout, probeTimeout)
	pc.Net.ReadTimeout = min(sc.Net.ReadTimeout, probeTimeout)
	pc.Net.WriteTimeout = min(sc.Net.WriteTimeout, probeTimeout)
	return &pc
}

// MaxMessageBytes returns the largest record the publisher sends: the
// Config.MaxMessageBytes given, or the one New read from the cluster, or
// outbox.DefaultMaxMessageBytes if the cluster did not say. Use it as
// outbox.Config.MaxMessageBytes so that Enqueue refuses, in the
// application's transaction, the messages the publisher would have to
// dead-letter:
//
//	ob, err := outbox.New(outbox.Config{Dialect: d, MaxMessageBytes: pub.MaxMessageBytes()})
func (p *Publisher) MaxMessageBytes() int { return p.maxMessageBytes }

// OrdersKeys reports true: Publish keeps the order of a key's records
// within a call (outbox.OrderedPublisher).
func (p *Publisher) OrdersKeys() bool { return true }

// Publish sends recs and waits until the broker has acknowledged or failed
// every one, or ctx ends. It returns one error per record, in order: nil
// when the broker has the record, an error marked by Classify when it does
// not, outbox.ErrNotSent for a record held back because an earlier record
// of its partition did not get through, ctx's error for those without an
// outcome when ctx ended, and ErrClosed wrapped with outbox.ErrUnavailable
// after Close.
//
// Every record gets its headers in order and then outbox-id = Record.MessageID.
// The records of one partition go in record batches, one batch in flight
// per partition, in the order of recs; the batches of different partitions
// go together, one request per broker. A record is appended only after
// every earlier record of its partition in the call was appended or failed
// permanently; a batch the broker rejects as a whole for one record's sake
// (MESSAGE_TOO_LARGE and the like) is sent again one record per batch.
//
// When ctx ends first, a request in flight may still reach the broker, so
// Publish keeps using the records' byte slices: do not modify them.
func (p *Publisher) Publish(ctx context.Context, recs []outbox.Record) []error {
	if len(recs) == 0 {
		return []error{}
	}
	if p.isClosing() {
		return p.closedErrs(len(recs))
	}
	select {
	case p.turn <- struct{}{}:
	case <-ctx.Done():
		errs := make([]error, len(recs))
		for i := range errs {
			errs[i] = ctx.Err()
		}
		return errs
	}
	defer func() { <-p.turn }()
	if p.client.Closed() {
		return p.closedErrs(len(recs))
	}
	return p.newCall(recs).run(ctx)
}

func (p *Publisher) isClosing() bool {
	select {
	case <-p.closing:
		return true
	default:
		return false
	}
}

func (p *Publisher) closedErrs(n int) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = fmt.Errorf("%w: %w", outbox.ErrUnavailable, ErrClosed)
	}
	return errs
}

// Probe reports whether a broker of the cluster answers: it connects to the
// bootstrap brokers (with TLS and SASL as configured) and asks for their API
// versions, returning nil at the first answer. The relay calls it while it
// backs off from an outage, to resume as soon as the cluster is back.
func (p *Publisher) Probe(ctx context.Context) error {
	if p.isClosing() {
		return fmt.Errorf("%w: %w", outbox.ErrUnavailable, ErrClosed)
	}
	return p.probe.run(ctx)
}

// Close lets the request in flight of a Publish call finish, fails the
// records not sent yet with ErrClosed wrapped with outbox.ErrUnavailable,
// and closes the connections; while the cluster does not answer, that takes
// up to Timeout. Call it after
// the relay has stopped. Publish calls after Close fail the same way.
// Close is idempotent and safe to call concurrently; it always returns nil.
func (p *Publisher) Close() error {
	p.closeOnce.Do(func() {
		close(p.closing)
		p.turn <- struct{}{}
		defer func() { <-p.turn }()
		_ = p.client.Close()
	})
	return nil
}
