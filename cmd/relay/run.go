package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql" // mysql:// URLs
	_ "github.com/lib/pq"            // postgres:// URLs
	_ "modernc.org/sqlite"           // sqlite: URLs

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/internal/ctxtime"
	"github.com/outboxrelay/outbox/migrations"
	"github.com/outboxrelay/outbox/publisher/kafka"
)

const runAbout = `Publishes committed outbox messages to Kafka until SIGTERM or SIGINT, then
stops claiming, finishes its batch within --shutdown-timeout, releases its
shards and exits 0. A second signal exits at once. Run as many relays as you
like against one database: they split the shards between them.

The database URL comes from OUTBOX_DATABASE_URL (or the file named by
--database-url-file), never from a flag:
  postgres://user:pass@host:5432/db?sslmode=disable
  postgres://user@/db?host=/var/run/postgresql      (Unix socket)
  mysql://user:pass@host:3306/db                     (or mariadb://)
  mysql://user:pass@/db?socket=/run/mysqld/mysqld.sock
  sqlite:/path/to/app.db
The SASL password comes from OUTBOX_KAFKA_SASL_PASSWORD or
--kafka-sasl-password-file.`

const runExamples = `  OUTBOX_DATABASE_URL=postgres://app@localhost:5432/app?sslmode=disable \
  OUTBOX_KAFKA_BROKERS=localhost:9092 relay run
  relay run --database-url-file /run/secrets/db --kafka-brokers k1:9092,k2:9092 \
    --kafka-tls --kafka-sasl-mechanism SCRAM-SHA-512 --kafka-sasl-user relay \
    --kafka-sasl-password-file /run/secrets/kafka --log-format json`

// dbFlags are the flags every command that opens the database has.
type dbFlags struct {
	urlFile  *string
	maxConns *int
}

func addDBFlags(fs *flag.FlagSet) dbFlags {
	return dbFlags{
		urlFile:  fs.String("database-url-file", "", "file holding the database URL (else OUTBOX_DATABASE_URL)"),
		maxConns: fs.Int("db-max-conns", 4, "most open database connections of the relay's own pool"),
	}
}

// open opens the database of OUTBOX_DATABASE_URL, with tune (if not nil)
// applied to it first.
func (f dbFlags) open(getenv func(string) string, tune func(database) database) (*sql.DB, database, error) {
	raw, err := secret(getenv, "OUTBOX_DATABASE_URL", *f.urlFile)
	if err != nil {
		return nil, database{}, err
	}
	d, err := parseDatabaseURL(raw)
	if err != nil {
		return nil, database{}, err
	}
	if tune != nil {
		d = tune(d)
	}
	if *f.maxConns < 2 {
		return nil, database{}, fmt.Errorf("%w: --db-max-conns must be at least 2, got %d", ErrUsage, *f.maxConns)
	}
	db, err := sql.Open(d.driver, d.dsn)
	if err != nil {
		return nil, database{}, fmt.Errorf("opening %s: %w", d.display, err)
	}
	db.SetMaxOpenConns(*f.maxConns)
	db.SetMaxIdleConns(*f.maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return db, d, nil
}

// waitForDatabase pings until the database answers, one log line per
// failure with a growing pause, so a relay started before its database does
// not crash-loop.
func waitForDatabase(ctx context.Context, db *sql.DB, d database, log *slog.Logger) error {
	wait := 500 * time.Millisecond
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := db.PingContext(pctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if refused(err) {
			return fmt.Errorf("database %s refused the connection (credentials or database name; not retrying): %w", d.display, err)
		}
		log.Error("database unreachable; retrying", "database", d.display, "err", err, "retry_in", wait)
		if !ctxtime.Sleep(ctx, wait) {
			return ctx.Err()
		}
		wait = min(wait*2, 30*time.Second)
	}
}

// refused reports errors that waiting does not fix: PostgreSQL SQLSTATE
// classes 28 (bad credentials, unknown role) and 3D (unknown database),
// MySQL errors 1044, 1045 (access denied) and 1049 (unknown database).
func refused(err error) bool {
	var st interface{ SQLState() string }
	if errors.As(err, &st) {
		c := st.SQLState()
		return strings.HasPrefix(c, "28") || strings.HasPrefix(c, "3D")
	}
	var my *mysql.MySQLError
	if errors.As(err, &my) {
		return my.Number == 1044 || my.Number == 1045 || my.Number == 1049
	}
	return false
}

// runOptions are the flags of relay run.
type runOptions struct {
	db                                      dbFlags
	brokers, clientID, version, compression string
	partitioner                             string
	maxMsg                                  int
	tls                                     tlsOptions
	saslMech, saslUser, saslPassFile        string
	shards, batch, batchBytes, maxAttempts  int
	poll, lease                             time.Duration
	retryBackoff, retryBackoffMax           time.Duration
	outageBackoff, outageBackoffMax         time.Duration
	probeInterval                           time.Duration
	publishTimeout, shutdownTimeout         time.Duration
	relayID                                 string
	migrate                                 bool
	logFormat, logLevel                     string
	pruneInterval                           time.Duration
	pruneOlderThan                          ageFlag
	observe                                 *observeOptions // observe.go
}

// addRunFlags declares the flags of relay run on fs. (One line per flag:
// the reason it is longer than the others.)
func addRunFlags(fs *flag.FlagSet) *runOptions {
	o := &runOptions{db: addDBFlags(fs)}
	fs.StringVar(&o.brokers, "kafka-brokers", "", "comma-separated Kafka bootstrap brokers (required)")
	fs.StringVar(&o.clientID, "kafka-client-id", "outbox-relay", "Kafka client id")
	fs.StringVar(&o.version, "kafka-version", "", "Kafka protocol version, e.g. 3.6.0 (default: the publisher's)")
	fs.StringVar(&o.compression, "kafka-compression", "none", "none, gzip, snappy, lz4 or zstd")
	fs.StringVar(&o.partitioner, "kafka-partitioner", "hash", "hash (Sarama's FNV-1a) or murmur2 (where Java clients and Debezium put keys)")
	fs.IntVar(&o.maxMsg, "kafka-max-message-bytes", 0, "largest record the producer sends (default 0: the broker's message.max.bytes, read at start)")
	fs.BoolVar(&o.tls.enable, "kafka-tls", false, "connect to Kafka over TLS")
	fs.StringVar(&o.tls.caFile, "kafka-tls-ca-file", "", "PEM file of the CAs to trust (default: the system's)")
	fs.StringVar(&o.tls.certFile, "kafka-tls-cert-file", "", "PEM client certificate (mutual TLS)")
	fs.StringVar(&o.tls.keyFile, "kafka-tls-key-file", "", "PEM client key (mutual TLS)")
	fs.StringVar(&o.tls.serverName, "kafka-tls-server-name", "", "server name to verify (default: the broker host)")
	fs.BoolVar(&o.tls.insecureSkipVerify, "kafka-tls-insecure-skip-verify", false, "do not verify the broker certificate (testing only)")
	fs.StringVar(&o.saslMech, "kafka-sasl-mechanism", "", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (default: no SASL)")
	fs.StringVar(&o.saslUser, "kafka-sasl-user", "", "SASL user name")
	fs.StringVar(&o.saslPassFile, "kafka-sasl-password-file", "", "file holding the SASL password (else OUTBOX_KAFKA_SASL_PASSWORD)")
	fs.IntVar(&o.shards, "shards", outbox.DefaultNumShards, "number of shards; must equal the application's outbox.Config.NumShards")
	fs.IntVar(&o.batch, "batch-size", outbox.DefaultBatchSize, "most messages per batch")
	fs.IntVar(&o.batchBytes, "batch-bytes", outbox.DefaultBatchBytes, "most bytes of keys, values and headers per batch")
	fs.DurationVar(&o.poll, "poll-interval", outbox.DefaultPollInterval, "longest wait between reads of an idle outbox")
	fs.DurationVar(&o.lease, "lease-duration", outbox.DefaultLeaseDuration, "shard lease; a crashed relay's shards are taken over after it")
	fs.IntVar(&o.maxAttempts, "max-attempts", outbox.DefaultMaxAttempts, "failed attempts before a message is dead-lettered")
	fs.DurationVar(&o.retryBackoff, "retry-backoff", outbox.DefaultRetryBackoff, "first wait before retrying a failed message (doubles)")
	fs.DurationVar(&o.retryBackoffMax, "retry-backoff-max", outbox.DefaultRetryBackoffMax, "longest wait before retrying a failed message")
	fs.DurationVar(&o.outageBackoff, "outage-backoff", outbox.DefaultOutageBackoff, "first pause while the broker is unavailable (doubles)")
	fs.DurationVar(&o.outageBackoffMax, "outage-backoff-max", outbox.DefaultOutageBackoffMax, "longest pause while the broker is unavailable")
	fs.DurationVar(&o.probeInterval, "probe-interval", outbox.DefaultProbeInterval, "how often to ask the broker whether it is back, during an outage pause")
	fs.DurationVar(&o.publishTimeout, "publish-timeout", outbox.DefaultPublishTimeout, "bound on one publish call")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", outbox.DefaultShutdownTimeout, "time to finish the batch in flight after SIGTERM")
	fs.StringVar(&o.relayID, "relay-id", "", "name of this relay in leases and logs (default: host-pid-random)")
	fs.BoolVar(&o.migrate, "migrate", false, "apply the outbox migrations before starting")
	fs.StringVar(&o.logFormat, "log-format", "text", "text or json")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&o.pruneInterval, "prune-interval", 0, "prune old dead letters this often (0: never; else at least 1m, the first within 10s of the start; see relay prune); one relay with it is enough")
	o.pruneOlderThan = ageFlag{name: "prune-older-than", text: "30d", d: 30 * 24 * time.Hour}
	fs.Var(&o.pruneOlderThan, "prune-older-than", "age of the dead letters --prune-interval deletes (e.g. 36h, 30d, 2w)")
	o.observe = addObserveFlags(fs)
	return o
}

// kafkaConfig is the publisher's configuration, validated.
func (o *runOptions) kafkaConfig(getenv func(string) string) (kafka.Config, error) {
	if len(splitList(o.brokers)) == 0 {
		return kafka.Config{}, fmt.Errorf("%w: --kafka-brokers (OUTBOX_KAFKA_BROKERS) is required", ErrUsage)
	}
	tlsConf, err := o.tls.config()
	if err != nil {
		return kafka.Config{}, err
	}
	password, err := secret(getenv, "OUTBOX_KAFKA_SASL_PASSWORD", o.saslPassFile)
	if err != nil {
		return kafka.Config{}, err
	}
	kcfg := kafka.Config{
		Brokers: splitList(o.brokers), ClientID: o.clientID, Version: o.version,
		Compression: o.compression, Partitioner: o.partitioner, MaxMessageBytes: o.maxMsg,
		TLS: tlsConf, SASL: kafka.SASL{Mechanism: o.saslMech, User: o.saslUser, Password: password},
	}
	if err := kcfg.Validate(); err != nil {
		return kafka.Config{}, fmt.Errorf("%w: %w", ErrUsage, inFlagTerms(err))
	}
	return kcfg, nil
}

// relayConfig is the relay's configuration, validated.
func (o *runOptions) relayConfig(d outbox.RelayConfig) (outbox.RelayConfig, error) {
	rcfg := outbox.RelayConfig{
		Dialect: d.Dialect, Logger: d.Logger,
		NumShards: o.shards, ID: o.relayID, BatchSize: o.batch, BatchBytes: o.batchBytes,
		PollInterval: o.poll, MinPollInterval: min(outbox.DefaultMinPollInterval, o.poll),
		LeaseDuration: o.lease, MaxAttempts: o.maxAttempts,
		RetryBackoff: o.retryBackoff, RetryBackoffMax: o.retryBackoffMax,
		OutageBackoff: o.outageBackoff, OutageBackoffMax: o.outageBackoffMax, ProbeInterval: o.probeInterval,
		PublishTimeout: o.publishTimeout, ShutdownTimeout: o.shutdownTimeout,
	}
	if err := rcfg.Validate(); err != nil {
		return rcfg, fmt.Errorf("%w: %w", ErrUsage, inFlagTerms(err))
	}
	return rcfg, nil
}

func cmdRun(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := newFlagSet("run", runAbout, runExamples, stdout)
	o := addRunFlags(fs)
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if err := checkPruneInterval(o.pruneInterval); err != nil {
		return err
	}
	log, err := newLogger(stderr, o.logFormat, o.logLevel)
	if err != nil {
		return err
	}
	// The MySQL driver logs on its own ("closing bad idle connection");
	// route that through the relay's logger so every line keeps its format.
	_ = mysql.SetLogger(mysqlLogger{log})
	kcfg, err := o.kafkaConfig(getenv)
	if err != nil {
		return err
	}
	db, d, err := o.db.open(getenv, func(d database) database { return d.relaySession(o.lease) })
	if err != nil {
		return err
	}
	defer db.Close()
	// Validate everything before touching the network.
	rcfg, err := o.relayConfig(outbox.RelayConfig{Dialect: d.dialect, Logger: log})
	if err != nil {
		return err
	}

	ctx, stop := signalContext(func(s os.Signal) {
		log.Info("signal received: stopping (send it again to exit at once)", "signal", s.String(), "shutdown_timeout", o.shutdownTimeout)
	})
	defer stop()
	obs, err := o.observe.start(ctx, d, &rcfg, log)
	if err != nil {
		return err
	}
	defer obs.close()
	traces, err := startTracing(ctx, getenv, &rcfg, log) // tracing.go
	if err != nil {
		return err
	}
	defer traces.close(log)
	if o.pruneInterval > 0 {
		pctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { pruneLoop(pctx, db, d.dialect, o.pruneInterval, o.pruneOlderThan.d, log) })
		defer wg.Wait()
		defer cancel()
	}
	log.Info("relay starting", "database", d.display, "brokers", kcfg.Brokers, "tls", kcfg.TLS != nil, "sasl", o.saslMech)
	return serve(ctx, db, d, kcfg, rcfg, o.migrate, log)
}

// serve waits for the database, migrates if asked, connects to Kafka and
// runs the relay until ctx ends. A signal while it waits is a clean stop.
func serve(ctx context.Context, db *sql.DB, d database, kcfg kafka.Config, rcfg outbox.RelayConfig, migrate bool, log *slog.Logger) error {
	if err := waitForDatabase(ctx, db, d, log); err != nil {
		if ctx.Err() != nil {
			return nil // stopped by a signal while waiting
		}
		return err
	}
	if migrate {
		if err := migrations.Up(ctx, db, d.dialect); err != nil {
			return fmt.Errorf("--migrate: %w", explainMigrateError(err, d.display))
		}
		log.Info("migrations applied")
	}
	pub, err := connectKafka(ctx, kcfg, log)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped by a signal while waiting
		}
		return err // not worth retrying: bad credentials, refused configuration
	}
	defer closePublisher(pub, log)
	// Collapse the failure lines of a database outage (dbwatch.go).
	watchLog, stopWatch := watchDatabase(ctx, d, rcfg.Logger)
	defer stopWatch()
	rcfg.Logger = watchLog
	if d.dialect.SupportsNotify() {
		// Wake at commit instead of waiting for the next poll; polling
		// stays as the fallback if the listener's connection drops.
		wake, stopListen := listenForCommits(ctx, d.dsn, rcfg.Logger)
		defer stopListen()
		rcfg.Wake = wake
	}
	relay, err := outbox.NewRelay(db, pub, rcfg)
	if err != nil {
		return err
	}
	return relay.Run(ctx)
}

// connectKafka creates the publisher, retrying while the brokers are
// unreachable, with one log line per failure and a growing pause.
func connectKafka(ctx context.Context, cfg kafka.Config, log *slog.Logger) (*kafka.Publisher, error) {
	wait := time.Second
	for {
		// kafka.New does not take a context and can wait long on a broker
		// that accepts connections but never answers: do not wait for it
		// past a signal.
		done := make(chan kafkaResult, 1)
		go func() {
			pub, err := kafka.New(cfg)
			done <- kafkaResult{pub, err}
		}()
		res, err := awaitKafka(ctx, done, cfg.Brokers, log)
		if err != nil {
			go func() { // close it if it ever connects
				if res := <-done; res.pub != nil {
					_ = res.pub.Close()
				}
			}()
			return nil, err
		}
		pub, err := res.pub, res.err
		if err == nil {
			return pub, nil
		}
		if !errors.Is(err, outbox.ErrUnavailable) {
			return nil, err
		}
		log.Error("Kafka unreachable; retrying", "brokers", cfg.Brokers, "err", err, "retry_in", wait)
		if !ctxtime.Sleep(ctx, wait) {
			return nil, ctx.Err()
		}
		wait = min(wait*2, 30*time.Second)
	}
}

// kafkaResult is the outcome of kafka.New.
type kafkaResult struct {
	pub *kafka.Publisher
	err error
}

// kafkaSilence is how long connecting may go on before the relay says
// that Kafka does not answer yet, and again every time it passes.
const kafkaSilence = 10 * time.Second

// awaitKafka waits for kafka.New's outcome on done, logging a line every
// kafkaSilence while it has none (a broker that accepts connections and
// never answers holds New for its timeouts and retries), until ctx ends.
func awaitKafka(ctx context.Context, done <-chan kafkaResult, brokers []string, log *slog.Logger) (kafkaResult, error) {
	start := time.Now()
	tick := time.NewTicker(kafkaSilence)
	defer tick.Stop()
	for {
		select {
		case res := <-done:
			return res, nil
		case <-tick.C:
			log.Warn("Kafka does not answer yet; still connecting", "brokers", brokers, "waited", time.Since(start).Round(time.Second))
		case <-ctx.Done():
			return kafkaResult{}, ctx.Err()
		}
	}
}

// closePublisher closes the producer but waits at most two seconds: a
// broker that does not answer must not hold the exit past the shutdown
// timeout. Records still in flight were not acknowledged, so they stay in
// the outbox and are published again later.
func closePublisher(pub *kafka.Publisher, log *slog.Logger) {
	done := make(chan struct{})
	go func() {
		_ = pub.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		log.Warn("Kafka producer did not close within 2s; exiting anyway (records in flight are published again later)")
	}
}

// mysqlLogger adapts slog to the MySQL driver's logger.
type mysqlLogger struct{ log *slog.Logger }

func (l mysqlLogger) Print(v ...any) {
	l.log.Warn("mysql driver: " + strings.TrimSpace(fmt.Sprint(v...)))
}

const migrateAbout = `Creates or upgrades the outbox tables (goose migrations with their own
version table, outbox_goose_version). Safe to run from several processes at
once, and again when nothing is pending. The database URL comes from
OUTBOX_DATABASE_URL or --database-url-file.`

func cmdMigrate(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := newFlagSet("migrate", migrateAbout, "  OUTBOX_DATABASE_URL=mysql://app:secret@db:3306/app relay migrate", stdout)
	dbf := addDBFlags(fs)
	wait := fs.Duration("wait-for-database", defaultMigrateWait, "how long to wait for a database that does not answer yet")
	lockWait := fs.Duration("lock-timeout", migrations.DefaultLockTimeout, "how long to wait for the migration lock another relay migrate holds")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	db, d, err := dbf.open(getenv, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, stop := signalContext(func(os.Signal) {})
	defer stop()
	log, _ := newLogger(stderr, "text", "info")
	if err := waitForDatabaseFor(ctx, db, d, *wait, log); err != nil {
		return err
	}
	p, err := migrations.NewProviderLockTimeout(db, d.dialect, *lockWait)
	if err != nil {
		return err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return explainMigrateError(err, d.display)
	}
	version, err := p.GetDBVersion(ctx)
	if err != nil {
		return explainMigrateError(err, d.display)
	}
	fmt.Fprintf(stdout, "migrate: %s: applied %d, schema version %d\n", d.display, len(results), version)
	return nil
}
