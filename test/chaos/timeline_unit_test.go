//go:build unix

package chaos

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestAnalyze checks the liveness figures on made-up timelines: the
// checker must fail the shapes the guarantees forbid and pass the others.
func TestAnalyze(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	l := limits{gap: 2 * time.Second, recovery: 3 * time.Second, lease: 3 * time.Second, batch: 10}

	// steady: a message committed every 100 ms from 0 to 30 s, each
	// delivered 50 ms later, except as the case changes it.
	type change func(commits map[string]time.Time, ds []delivery) []delivery
	steady := func(ch change) (map[string]time.Time, []delivery) {
		commits := map[string]time.Time{}
		var ds []delivery
		for i := range 300 {
			id := fmt.Sprintf("m%03d", i)
			commits[id] = at(i * 100)
			ds = append(ds, delivery{id, at(i*100 + 50)})
		}
		if ch != nil {
			ds = ch(commits, ds)
		}
		return commits, ds
	}
	// stall delays the first deliveries of messages committed in [from, to)
	// until until.
	stall := func(from, to, until int) change {
		return func(_ map[string]time.Time, ds []delivery) []delivery {
			for i := range ds {
				if c := int(ds[i].at.Sub(t0)/time.Millisecond) - 50; c >= from && c < to {
					ds[i].at = at(until + i%5)
				}
			}
			return ds
		}
	}
	dupes := func(n, ms int) change {
		return func(_ map[string]time.Time, ds []delivery) []delivery {
			for i := range n {
				ds = append(ds, delivery{ds[i].id, at(ms + i)})
			}
			return ds
		}
	}
	kill := faultWindow{kind: kindKill, start: at(10_000), end: at(10_010), cut: 1}
	var closeKills []faultWindow // a connection kill every 3.5 s
	for ms := 5_000; ms < 50_000; ms += 3_500 {
		closeKills = append(closeKills, faultWindow{kind: kindDBKill, start: at(ms), end: at(ms + 100), cut: 3})
	}
	broker := faultWindow{kind: kindBroker, start: at(10_000), end: at(13_000)}

	for _, tc := range []struct {
		name   string
		ch     change
		faults []faultWindow
		want   []string // substrings of the violations; none when empty
	}{
		{name: "steady, no faults"},
		{name: "stall away from faults", ch: stall(5_000, 8_000, 8_050), want: []string{"no delivery for 3.05s", "waited 3.05s for its delivery"}},
		{name: "one message late away from faults", ch: func(_ map[string]time.Time, ds []delivery) []delivery {
			ds[50].at = ds[50].at.Add(2500 * time.Millisecond) // others flow meanwhile
			return ds
		}},
		{name: "short stall away from faults", ch: stall(5_000, 6_500, 6_550)},
		{name: "broker outage, prompt recovery", ch: stall(10_000, 13_000, 13_500), faults: []faultWindow{broker}},
		{name: "broker outage, slow recovery", ch: stall(10_000, 13_000, 17_000), faults: []faultWindow{broker},
			want: []string{"recovery from broker-restart", "took 4s, bound 3s"}},
		{name: "crash recovered within the lease", ch: stall(9_000, 10_010, 15_000), faults: []faultWindow{kill}},
		{name: "crash recovered late", ch: stall(9_000, 10_010, 17_000), faults: []faultWindow{kill},
			want: []string{"recovery from kill", "bound 6s"}},
		{name: "a batch of duplicates after a crash", ch: dupes(10, 11_000), faults: []faultWindow{kill}},
		{name: "more than a batch after a crash", ch: dupes(11, 11_000), faults: []faultWindow{kill}, want: []string{"1 duplicates that no fault explains"}},
		{name: "duplicates after a broker restart that lost no answer", ch: dupes(1, 14_000), faults: []faultWindow{broker}, want: []string{"1 duplicates that no fault explains"}},
		{name: "duplicates after a broker restart that lost answers", ch: dupes(20, 14_000), faults: []faultWindow{{kind: kindBroker, start: at(10_000), end: at(13_000), cut: 2}}},
		{name: "duplicates before any fault", ch: dupes(2, 1_000), faults: []faultWindow{broker}, want: []string{"2 duplicates that no fault explains"}},
		{name: "freeze with no takeover", ch: stall(9_000, 10_000, 17_100), faults: []faultWindow{{kind: kindStop, start: at(10_000), end: at(17_000), cut: 1}},
			want: []string{"recovery from stop", "took 7.1s, bound 6s"}},
		{name: "a stall among faults that follow each other closely", ch: stall(10_000, 12_000, 45_000), faults: closeKills,
			want: []string{"recovery from db-kill"}},
		{name: "overlapping faults recover from the last end", ch: stall(9_000, 13_000, 15_900),
			faults: []faultWindow{kill, {kind: kindProduce, start: at(12_000), end: at(13_000)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			commits, ds := steady(tc.ch)
			r := analyze(commits, ds, tc.faults, l)
			got := strings.Join(r.violations, "\n")
			if len(tc.want) == 0 && got != "" {
				t.Fatalf("violations:\n%s\n%s", got, r.summary())
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("violations do not mention %q:\n%s\n%s", w, got, r.summary())
				}
			}
		})
	}
}

// TestAllowedRecovery checks that a fault's allowance grows only by the
// faults whose windows overlap its own, one step: a chain of faults close
// to each other must not make every bound as long as the chain.
func TestAllowedRecovery(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	l := limits{recovery: 3 * time.Second, lease: 3 * time.Second, outage: 10 * time.Second, batch: 100}
	var fs []faultWindow
	for s := 10.0; s < 60; s += 2.5 { // a connection kill every 2.5 s
		fs = append(fs, faultWindow{kind: kindDBKill, start: at(s), end: at(s + 0.1), cut: 3})
	}
	r := analyze(nil, nil, fs, l)
	for _, fr := range r.faults {
		if fr.allowed > 7*time.Second {
			t.Fatalf("fault at %s: allowed %s, want at most its own 3 s plus its neighbours' (one step)", fr.f.start.Sub(t0), fr.allowed)
		}
		if fr.alone {
			t.Fatalf("fault at %s: alone, but its neighbours overlap it", fr.f.start.Sub(t0))
		}
	}
	// Broker outages one after the other are one long outage: a message
	// committed before the first may wait until the last is over.
	var outages []faultWindow
	for s := 100.0; s < 140; s += 8 {
		outages = append(outages, faultWindow{kind: kindBroker, start: at(s), end: at(s + 3)})
	}
	first := normalized(outages)
	until, _ := allowedUntil(first, 0, l)
	if want := at(132 + 3 + 13); !until.Equal(want) {
		t.Errorf("after a chain of outages: allowed until %s, want %s (the end of the last one's window)", until.Sub(t0), want.Sub(t0))
	}

	freeze := faultWindow{kind: kindStop, start: at(10), end: at(17), cut: 1}
	if a, b := window(freeze, l); !a.Equal(at(10)) || !b.Equal(at(23)) {
		t.Errorf("freeze window %s-%s, want 10s-23s (its wake-up may send its last batch)", a.Sub(t0), b.Sub(t0))
	}
	if got := freeze.from(); !got.Equal(at(10)) {
		t.Errorf("recovery from a freeze measured from %s, want its start: the others must take over", got.Sub(t0))
	}
}
