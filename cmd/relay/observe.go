package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/prommetrics"
)

// observeOptions are the flags of relay run for metrics, health probes and
// the liveness file.
type observeOptions struct {
	httpAddr     string
	livenessFile string
	maxStall     time.Duration
	refresh      time.Duration
}

func addObserveFlags(fs *flag.FlagSet) *observeOptions {
	o := &observeOptions{}
	fs.StringVar(&o.httpAddr, "http-addr", "", "serve /metrics, /healthz and /readyz on this address, e.g. :9464 (default: no server)")
	fs.StringVar(&o.livenessFile, "liveness-file", "", "touch this file every turn of the work loop (at most once a second), for exec probes")
	fs.DurationVar(&o.maxStall, "health-max-stall", 0, "how long the work loop may make no progress before /healthz fails (default: the longer of the publish timeout and the poll interval, + lease duration + 30s)")
	fs.DurationVar(&o.refresh, "metrics-refresh-interval", prommetrics.DefaultRefreshInterval, "how often the pending, lag and dead-letter gauges are queried")
	return o
}

// observability is what --http-addr and --liveness-file run beside the
// relay.
type observability struct {
	srv    *http.Server
	served chan struct{}
	stop   context.CancelFunc
	side   *sql.DB // the probes' and gauges' own connection
}

// start binds --http-addr (failing at once when it cannot), sets the
// relay's observer, and serves until close. With neither flag set it does
// nothing.
func (o *observeOptions) start(ctx context.Context, d database, rcfg *outbox.RelayConfig, log *slog.Logger) (*observability, error) {
	if o.httpAddr == "" && o.livenessFile == "" {
		return &observability{}, nil
	}
	stall := o.maxStall
	if stall == 0 {
		// The longest turn of a healthy loop: a publish call, or an idle
		// wait (not announced as a backoff), plus a lease and a margin.
		stall = max(rcfg.PublishTimeout, rcfg.PollInterval) + rcfg.LeaseDuration + 30*time.Second
	}
	h := newHealth(stall, o.livenessFile, log)
	// A healthy lease keeper finishes a round at least every renew interval
	// plus a round's own bound (half a lease).
	renew := rcfg.RenewInterval
	if renew == 0 {
		renew = rcfg.LeaseDuration / 3 // RelayConfig's default
	}
	h.keeperGap = renew + rcfg.LeaseDuration/2
	if o.httpAddr == "" {
		rcfg.Observer = h
		return &observability{}, nil
	}
	ln, err := net.Listen("tcp", o.httpAddr)
	if err != nil {
		return nil, fmt.Errorf("--http-addr %s: cannot serve metrics and probes: %w", o.httpAddr, err)
	}
	// /readyz's ping and the backlog gauges use a connection of their own:
	// on the relay's pool they would wait behind its work under a backlog
	// (and report a database that answers as gone), or take a connection
	// its lease round needs.
	side, err := sql.Open(d.driver, d.dsn)
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("opening %s for the probes: %w", d.display, err)
	}
	side.SetMaxOpenConns(1)
	side.SetMaxIdleConns(1)
	m := prommetrics.New(prommetrics.Options{})
	reg := prometheus.NewRegistry()
	reg.MustRegister(m, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rcfg.Observer = observers{m, h}

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { probeAnswer(w, h.healthy(time.Now())) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { probeAnswer(w, ready(r.Context(), side, h)) })

	bg, stop := context.WithCancel(ctx)
	obs := &observability{
		srv:    &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		served: make(chan struct{}),
		stop:   stop,
		side:   side,
	}
	go func() {
		defer close(obs.served)
		if err := obs.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "addr", o.httpAddr, "err", err)
		}
	}()
	go m.RefreshBacklog(bg, d.dialect, side, o.refresh, log)
	log.Info("serving metrics and probes", "addr", ln.Addr().String(), "paths", "/metrics /healthz /readyz")
	return obs, nil
}

// close stops the server (within two seconds) and the gauges' refresh.
func (o *observability) close() {
	if o.srv == nil {
		return
	}
	o.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = o.srv.Shutdown(ctx)
	<-o.served
	_ = o.side.Close()
}

// ready returns nil when the database answers and the relay runs (holding
// shards, or waiting for some while other relays hold them all), or why
// not.
func ready(ctx context.Context, db *sql.DB, h *health) error {
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		return fmt.Errorf("the database does not answer: %w", err)
	}
	if ok, _ := h.running(); !ok {
		return errors.New("the relay has not started its work loop yet")
	}
	return h.healthy(time.Now())
}

// probeAnswer writes 200 "ok", or 503 and the reason.
func probeAnswer(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, err)
		return
	}
	fmt.Fprintln(w, "ok")
}

// observers sends every event to each of its observers in turn.
type observers []outbox.RelayObserver

func (all observers) OnCycle(e outbox.CycleEvent) {
	for _, o := range all {
		o.OnCycle(e)
	}
}

func (all observers) OnBatchRead(e outbox.BatchReadEvent) {
	for _, o := range all {
		o.OnBatchRead(e)
	}
}

func (all observers) OnPublishCall(e outbox.PublishCallEvent) {
	for _, o := range all {
		o.OnPublishCall(e)
	}
}

func (all observers) OnRecord(e outbox.RecordEvent) {
	for _, o := range all {
		o.OnRecord(e)
	}
}

func (all observers) OnSettle(e outbox.SettleEvent) {
	for _, o := range all {
		o.OnSettle(e)
	}
}

func (all observers) OnLeases(e outbox.LeaseEvent) {
	for _, o := range all {
		o.OnLeases(e)
	}
}

func (all observers) OnLeaseRound(e outbox.LeaseRoundEvent) {
	for _, o := range all {
		o.OnLeaseRound(e)
	}
}

func (all observers) OnBackoff(e outbox.BackoffEvent) {
	for _, o := range all {
		o.OnBackoff(e)
	}
}

func (all observers) OnProbe(e outbox.ProbeEvent) {
	for _, o := range all {
		o.OnProbe(e)
	}
}
