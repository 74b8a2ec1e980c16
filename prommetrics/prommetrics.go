// Package prommetrics exposes a relay's work as Prometheus metrics: it
// implements outbox.RelayObserver with github.com/prometheus/client_golang,
// and refreshes the gauges that need a query (pending messages, age of the
// oldest due message, dead letters) on an interval, with a bounded cost
// (dialect.ReadBacklog).
//
// The root package does not depend on Prometheus; only programs that import
// this package do. cmd/relay serves these metrics on --http-addr.
//
// Label cardinality is bounded: the topic label takes at most MaxTopics
// distinct values (default 1000); the records of later topics are counted
// under the topic OtherTopic. Keys and message ids are never labels.
package prommetrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outboxrelay/outbox"
)

// DefaultMaxTopics is the default of Options.MaxTopics.
const DefaultMaxTopics = 1000

// OtherTopic is the topic label of the records of the topics beyond
// MaxTopics. Outbox topics cannot contain "~", so it never names a real one.
const OtherTopic = "~other"

// Options configure Metrics. The zero value is usable.
type Options struct {
	// MaxTopics bounds the distinct values of the topic label. Default
	// DefaultMaxTopics.
	MaxTopics int
	// ConstLabels are added to every metric (for example the relay id,
	// though Prometheus's instance label usually says enough).
	ConstLabels prometheus.Labels
}

// Metrics is a relay's metrics. It implements outbox.RelayObserver: set it
// as RelayConfig.Observer, register it (it is a prometheus.Collector), and
// run RefreshBacklog for the gauges that need a query. Safe for
// concurrent use.
type Metrics struct {
	outbox.NopObserver

	maxTopics int
	mu        sync.RWMutex
	topics    map[string]*topicMetrics

	published    *prometheus.CounterVec
	retried      *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	failed       *prometheus.CounterVec
	leases       *prometheus.CounterVec
	backoffs     *prometheus.CounterVec
	backoffSecs  *prometheus.CounterVec
	probes       *prometheus.CounterVec
	readErrors   prometheus.Counter
	settleErrors prometheus.Counter
	recordsRead  prometheus.Counter
	refreshErrs  prometheus.Counter

	publishDur *prometheus.HistogramVec
	readDur    prometheus.Histogram
	settleDur  prometheus.Histogram
	delay      prometheus.Histogram

	shards, paused, lastCycle    prometheus.Gauge
	pending, oldest, deadLetters prometheus.Gauge
	pendingCapped                prometheus.Gauge

	all []prometheus.Collector
}

// topicMetrics are the counters of one topic label, resolved once.
type topicMetrics struct {
	label              string // the topic, or OtherTopic
	published, retried prometheus.Counter
}

// New returns the metrics of one relay, not registered yet.
func New(opts Options) *Metrics {
	if opts.MaxTopics <= 0 {
		opts.MaxTopics = DefaultMaxTopics
	}
	m := &Metrics{maxTopics: opts.MaxTopics, topics: map[string]*topicMetrics{}}
	f := factory{m: m, labels: opts.ConstLabels}
	m.published = f.counters("outbox_records_published_total", "Records the broker acknowledged.", "topic")
	m.retried = f.counters("outbox_records_retried_total", "Records that failed and wait for another attempt.", "topic")
	m.deadLettered = f.counters("outbox_records_dead_lettered_total", "Records moved to the dead-letter table, by reason (permanent, max_attempts, corrupt_headers).", "topic", "reason")
	m.failed = f.counters("outbox_records_failed_total", "Failed publications of records, by kind (retriable, permanent, unavailable, not_sent, aborted, corrupt).", "topic", "kind")
	m.leases = f.counters("outbox_shard_lease_changes_total", "Shard leases acquired, lost to another relay, or handed back.", "change")
	m.backoffs = f.counters("outbox_backoffs_total", "Deliberate waits of the relay, by reason.", "reason")
	m.backoffSecs = f.counters("outbox_backoff_seconds_total", "Time announced for deliberate waits, by reason.", "reason")
	m.probes = f.counters("outbox_broker_probes_total", "Probes of the broker during an outage, by result (up, down).", "result")
	m.readErrors = f.counter("outbox_batch_read_errors_total", "Reads of the outbox that failed.")
	m.settleErrors = f.counter("outbox_batch_settle_errors_total", "Batches whose outcome could not be recorded in full.")
	m.recordsRead = f.counter("outbox_records_read_total", "Records read from the outbox.")
	m.refreshErrs = f.counter("outbox_backlog_refresh_errors_total", "Failed refreshes of the backlog gauges.")
	m.publishDur = f.histograms("outbox_publish_call_duration_seconds", "Duration of one publish call to the broker, by result (ok, failed: some record failed).", prometheus.ExponentialBuckets(0.001, 2.5, 12), "result")
	m.readDur = f.histogram("outbox_batch_read_duration_seconds", "Duration of one read of the outbox.", prometheus.ExponentialBuckets(0.0005, 2.5, 12))
	m.settleDur = f.histogram("outbox_batch_settle_duration_seconds", "Duration of recording a batch's outcome (delete, retry, dead-letter).", prometheus.ExponentialBuckets(0.0005, 2.5, 12))
	m.delay = f.histogram("outbox_commit_to_publish_delay_seconds", "Time from a message's commit (created_at) to the broker's acknowledgement, on the database clock.", prometheus.ExponentialBuckets(0.005, 2.5, 14))
	m.shards = f.gauge("outbox_shards_held", "Shards this relay holds.")
	m.paused = f.gauge("outbox_topics_paused", "Topics paused because they were unavailable while others were not.")
	m.lastCycle = f.gauge("outbox_relay_last_cycle_timestamp_seconds", "Unix time of the work loop's last turn.")
	m.pending = f.gauge("outbox_pending_messages", "Messages in the outbox table, counted up to the backlog limit (see outbox_pending_messages_capped).")
	m.pendingCapped = f.gauge("outbox_pending_messages_capped", "1 when outbox_pending_messages reached the backlog limit: there may be more.")
	m.oldest = f.gauge("outbox_oldest_pending_age_seconds", "Age of the oldest message due for publication, on the database clock: how far behind the outbox is.")
	m.deadLetters = f.gauge("outbox_dead_letters", "Rows in the dead-letter table, counted up to the backlog limit.")
	return m
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.all {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.all {
		c.Collect(ch)
	}
}

// topic returns the counters of topic, or of OtherTopic once MaxTopics
// topics have counters.
func (m *Metrics) topic(topic string) *topicMetrics {
	m.mu.RLock()
	t, ok := m.topics[topic]
	m.mu.RUnlock()
	if ok {
		return t
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.topics[topic]; ok {
		return t
	}
	label := topic
	if len(m.topics) >= m.maxTopics {
		if t, ok := m.topics[OtherTopic]; ok {
			return t
		}
		label = OtherTopic
	}
	t = &topicMetrics{label: label, published: m.published.WithLabelValues(label), retried: m.retried.WithLabelValues(label)}
	m.topics[label] = t
	return t
}

// OnCycle implements outbox.RelayObserver.
func (m *Metrics) OnCycle(e outbox.CycleEvent) {
	m.shards.Set(float64(e.Shards))
	m.paused.Set(float64(e.PausedTopics))
	m.lastCycle.Set(float64(time.Now().UnixNano()) / 1e9)
}

// OnBatchRead implements outbox.RelayObserver.
func (m *Metrics) OnBatchRead(e outbox.BatchReadEvent) {
	m.readDur.Observe(e.Duration.Seconds())
	m.recordsRead.Add(float64(e.Records))
	if e.Err != nil {
		m.readErrors.Inc()
	}
}

// OnPublishCall implements outbox.RelayObserver.
func (m *Metrics) OnPublishCall(e outbox.PublishCallEvent) {
	result := "ok"
	if e.Failed > 0 {
		result = "failed"
	}
	m.publishDur.WithLabelValues(result).Observe(e.Duration.Seconds())
}

// OnRecord implements outbox.RelayObserver.
func (m *Metrics) OnRecord(e outbox.RecordEvent) {
	switch e.Outcome {
	case outbox.OutcomePublished:
		m.topic(e.Topic).published.Inc()
		if e.DelayKnown {
			m.delay.Observe(e.Delay.Seconds())
		}
		return
	case outbox.OutcomeRetried:
		m.topic(e.Topic).retried.Inc()
	case outbox.OutcomeDeadLettered:
		m.deadLettered.WithLabelValues(m.topic(e.Topic).label, string(e.Reason)).Inc()
	}
	if e.Failure != outbox.FailureNone {
		m.failed.WithLabelValues(m.topic(e.Topic).label, string(e.Failure)).Inc()
	}
}

// OnSettle implements outbox.RelayObserver.
func (m *Metrics) OnSettle(e outbox.SettleEvent) {
	m.settleDur.Observe(e.Duration.Seconds())
	if e.Err != nil {
		m.settleErrors.Inc()
	}
}

// OnLeases implements outbox.RelayObserver.
func (m *Metrics) OnLeases(e outbox.LeaseEvent) {
	m.leases.WithLabelValues(string(e.Change)).Add(float64(e.Count))
	m.shards.Set(float64(e.Held))
}

// OnBackoff implements outbox.RelayObserver.
func (m *Metrics) OnBackoff(e outbox.BackoffEvent) {
	m.backoffs.WithLabelValues(string(e.Reason)).Inc()
	m.backoffSecs.WithLabelValues(string(e.Reason)).Add(e.Duration.Seconds())
}

// OnProbe implements outbox.RelayObserver.
func (m *Metrics) OnProbe(e outbox.ProbeEvent) {
	result := "up"
	if e.Err != nil {
		result = "down"
	}
	m.probes.WithLabelValues(result).Inc()
}

var _ outbox.RelayObserver = (*Metrics)(nil)
var _ prometheus.Collector = (*Metrics)(nil)
