package verify

import "testing"

func TestLedger(t *testing.T) {
	l := New()
	l.Committed("a1", "a", 1)
	l.Committed("a2", "a", 2)
	l.Committed("a3", "a", 3)
	l.Committed("b1", "b", 1)
	l.RolledBack("x")
	for _, id := range []string{"a1", "a3", "a2", "b1", "b1", "x", "zzz"} {
		l.Observe(id)
	}
	got := l.Summary()
	want := Summary{Committed: 4, RolledBack: 1, Published: 4, Lost: 0, RolledBackPublished: 1, OrderViolations: 1, Duplicates: 1, Unknown: 1}
	if got != want {
		t.Fatalf("Summary = %+v\nwant      %+v", got, want)
	}
	if got.OK() {
		t.Fatal("OK() with violations")
	}
	l2 := New()
	l2.Committed("a1", "a", 1)
	if s := l2.Summary(); s.Lost != 1 || s.OK() {
		t.Fatalf("undelivered message: %+v", s)
	}
	l2.Observe("a1")
	if s := l2.Summary(); !s.OK() || s.String() != "committed=1 published=1 lost=0 rolled_back_published=0 order_violations=0 duplicates=0" {
		t.Fatalf("clean run: %+v %q", s, s.String())
	}
}

func TestCheck(t *testing.T) {
	l := New()
	l.Committed("a1", "a", 1)
	l.Committed("a2", "a", 2)
	l.RolledBack("x")
	ids := []string{"a1", "a2", "a1", "x"}
	for range 2 { // Check leaves the ledger as it was
		got := l.Check(ids)
		want := Summary{Committed: 2, RolledBack: 1, Published: 2, RolledBackPublished: 1, Duplicates: 1}
		if got != want {
			t.Fatalf("Check = %+v\nwant    %+v", got, want)
		}
	}
	if s := l.Check([]string{"a2", "a1"}); s.OrderViolations != 1 || s.Published != 2 {
		t.Fatalf("reordered: %+v", s)
	}
	if s := l.Summary(); s.Published != 0 || s.Lost != 2 {
		t.Fatalf("Summary after Check = %+v, want nothing observed", s)
	}
}
