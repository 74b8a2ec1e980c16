package prommetrics_test

import (
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/prommetrics"
)

// Metrics is a relay's observer and a Prometheus collector. In a program:
//
//	m := prommetrics.New(prommetrics.Options{})
//	prometheus.MustRegister(m)
//	go m.RefreshBacklog(ctx, d, db, 0, logger)
//	relay, err := outbox.NewRelay(db, pub, outbox.RelayConfig{Dialect: d, Observer: m})
//
// and serve promhttp.Handler(). Here the relay's events are fed by hand.
func Example() {
	m := prommetrics.New(prommetrics.Options{})
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)

	m.OnRecord(outbox.RecordEvent{Topic: "orders", Outcome: outbox.OutcomePublished})
	m.OnRecord(outbox.RecordEvent{Topic: "orders", Outcome: outbox.OutcomeDeadLettered,
		Failure: outbox.FailurePermanent, Reason: outbox.ReasonPermanent})

	err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP outbox_records_published_total Records the broker acknowledged.
# TYPE outbox_records_published_total counter
outbox_records_published_total{topic="orders"} 1
# HELP outbox_records_dead_lettered_total Records moved to the dead-letter table, by reason (permanent, max_attempts, corrupt_headers).
# TYPE outbox_records_dead_lettered_total counter
outbox_records_dead_lettered_total{reason="permanent",topic="orders"} 1
`), "outbox_records_published_total", "outbox_records_dead_lettered_total")
	fmt.Println(err)
	// Output: <nil>
}
