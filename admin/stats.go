package admin

import (
	"context"
	"time"

	"github.com/outboxrelay/outbox/dialect"
)

// Stats is the state of the outbox for an operator. Durations are in
// nanoseconds in JSON (the _ns fields); ages are measured on the
// database clock.
type Stats struct {
	At time.Time `json:"at"` // the database clock when read
	// Estimated: Pending and the per-topic and per-shard pending counts
	// are estimated from a sample (the outbox is large).
	Estimated bool          `json:"estimated"`
	Pending   int64         `json:"pending"`
	OldestAge time.Duration `json:"oldest_age_ns"` // of the first message in line; 0 when empty
	Retrying  int64         `json:"retrying"`
	// RetryingCapped: more messages wait for a retry than Config.Cap;
	// Retrying is Cap (at least that many).
	RetryingCapped bool `json:"retrying_capped"`
	// SampledFrom is how many of the messages waiting Waiting and Errors
	// are taken from: all when it equals Retrying and RetryingCapped is
	// false; else 1,000 of them in no particular order (Waiting is then
	// the next due of those, not of all).
	SampledFrom int64 `json:"sampled_from"`
	DeadLetters int64 `json:"dead_letters"`
	// DeadLettersCapped: more dead letters than Config.Cap; DeadLetters is
	// Cap (at least that many), and Topics counts the newest Cap of them.
	DeadLettersCapped bool `json:"dead_letters_capped"`
	RelaysAlive       int  `json:"relays_alive"`
	// TopicsComplete is false when Topics may miss a topic: the pending
	// counts are estimated from a sample (a small topic may be outside
	// it), the dead letters are capped, or either could not be read. A
	// topic's OldestAge is, when estimated, the oldest of the sample.
	TopicsComplete bool `json:"topics_complete"`
	// Failed are the parts that could not be read (an error or a
	// timeout); their figures are zero here, unknown in truth (Read
	// tells), and null in JSON.
	Failed []StepFailure `json:"failed"`

	Topics  []TopicStats `json:"topics"`
	Waiting []Waiting    `json:"waiting"`
	Errors  []ErrorCount `json:"errors"`
	Shards  []ShardStats `json:"shards"`
	Relays  []RelayStats `json:"relays"`
}

// StepFailure is a part of Stats that could not be read, and why.
type StepFailure struct {
	Step string `json:"step"` // StepPending, StepRetries, StepDeadLetters, StepShards or StepRelays
	Err  string `json:"error"`
}

// TopicStats is one topic's pending messages and dead letters.
type TopicStats struct {
	Topic       string        `json:"topic"`
	Pending     int64         `json:"pending"`
	OldestAge   time.Duration `json:"oldest_age_ns"`
	DeadLetters int64         `json:"dead_letters"`
	// LastDeadAge is the age of its newest dead letter; 0 when none.
	LastDeadAge time.Duration `json:"last_dead_age_ns"`
}

// Waiting is a message waiting for a retry.
type Waiting struct {
	RowID     int64  `json:"row_id"`
	MessageID string `json:"message_id"`
	Topic     string `json:"topic"`
	Shard     int    `json:"shard"`
	Attempts  int    `json:"attempts"`
	// NextAttemptIn is the time left before its next attempt (negative:
	// due, waiting for its shard's relay).
	NextAttemptIn time.Duration `json:"next_attempt_in_ns"`
	LastError     string        `json:"last_error"`
}

// ErrorCount is a last error of messages waiting for a retry, and how
// many have it.
type ErrorCount struct {
	Err   string `json:"error"`
	Count int64  `json:"count"`
}

// ShardStats is one shard.
type ShardStats struct {
	Shard int    `json:"shard"`
	Owner string `json:"owner"` // empty when free
	// LeaseLeft is the time left on the owner's lease (negative: expired).
	LeaseLeft time.Duration `json:"lease_left_ns"`
	Pending   int64         `json:"pending"`
	OldestAge time.Duration `json:"oldest_age_ns"`
}

// RelayStats is a relay that sent a heartbeat.
type RelayStats struct {
	ID           string        `json:"id"`
	HeartbeatAge time.Duration `json:"heartbeat_age_ns"`
	Alive        bool          `json:"alive"` // heartbeat within Config.LiveWithin
}

// Stats reads the state of the outbox. It only reads, takes no lock a
// relay waits for, and costs the same on a large outbox as on a small one
// (see dialect.Operator.Overview). A part that fails or times out is named
// in Stats.Failed and the others are still read; an error means nothing
// could be read.
func (a *Admin) Stats(ctx context.Context) (Stats, error) {
	o, err := a.d.Overview(ctx, a.db, dialect.OverviewRequest{Waiting: a.cfg.Sample, ExactUpTo: a.cfg.ExactUpTo,
		Cap: a.cfg.Cap, StepTimeout: a.cfg.StepTimeout})
	if err != nil {
		return Stats{}, wrap("reading stats", err)
	}
	age := func(t time.Time) time.Duration {
		if t.IsZero() {
			return 0
		}
		return o.Now.Sub(t)
	}
	// Empty lists, not nil: JSON [] rather than null for scripts.
	s := Stats{At: o.Now, Estimated: o.Estimated, Pending: o.Pending, OldestAge: age(o.Oldest),
		Retrying: o.Retrying, RetryingCapped: o.RetryingCapped, SampledFrom: o.SampledFrom, DeadLetters: o.DeadLetters, DeadLettersCapped: o.DeadCapped,
		TopicsComplete: !o.Estimated && !o.DeadCapped,
		Waiting:        []Waiting{}, Errors: []ErrorCount{}, Shards: []ShardStats{}, Relays: []RelayStats{}, Failed: []StepFailure{}}
	for _, f := range o.Failed {
		s.Failed = append(s.Failed, StepFailure{Step: f.Step, Err: f.Err.Error()})
		if f.Step == StepPending || f.Step == StepDeadLetters {
			s.TopicsComplete = false
		}
	}
	for _, e := range o.Errors {
		s.Errors = append(s.Errors, ErrorCount{Err: e.Err, Count: e.Count})
	}
	s.Topics = mergeTopics(o, age)
	for _, w := range o.Waiting {
		s.Waiting = append(s.Waiting, Waiting{RowID: w.RowID, MessageID: w.MessageID, Topic: w.Topic, Shard: w.Shard,
			Attempts: w.Attempts, NextAttemptIn: w.NextAttempt.Sub(o.Now), LastError: w.LastError})
	}
	for _, sh := range o.Shards {
		st := ShardStats{Shard: sh.Shard, Owner: sh.Owner, Pending: sh.Pending, OldestAge: age(sh.Oldest)}
		if sh.Owner != "" && !sh.LeaseUntil.IsZero() {
			st.LeaseLeft = sh.LeaseUntil.Sub(o.Now)
		}
		s.Shards = append(s.Shards, st)
	}
	for _, r := range o.Relays {
		rs := RelayStats{ID: r.ID, HeartbeatAge: age(r.HeartbeatAt)}
		rs.Alive = rs.HeartbeatAge <= a.cfg.LiveWithin
		if rs.Alive {
			s.RelaysAlive++
		}
		s.Relays = append(s.Relays, rs)
	}
	return s, nil
}

// mergeTopics joins the pending and dead-letter counts per topic, sorted
// by topic.
func mergeTopics(o dialect.Overview, age func(time.Time) time.Duration) []TopicStats {
	out := []TopicStats{}
	i, j := 0, 0
	for i < len(o.Topics) || j < len(o.Dead) {
		switch {
		case j == len(o.Dead) || (i < len(o.Topics) && o.Topics[i].Topic < o.Dead[j].Topic):
			t := o.Topics[i]
			out = append(out, TopicStats{Topic: t.Topic, Pending: t.Pending, OldestAge: age(t.Oldest)})
			i++
		case i == len(o.Topics) || o.Dead[j].Topic < o.Topics[i].Topic:
			dl := o.Dead[j]
			out = append(out, TopicStats{Topic: dl.Topic, DeadLetters: dl.Count, LastDeadAge: age(dl.Newest)})
			j++
		default:
			t, dl := o.Topics[i], o.Dead[j]
			out = append(out, TopicStats{Topic: t.Topic, Pending: t.Pending, OldestAge: age(t.Oldest),
				DeadLetters: dl.Count, LastDeadAge: age(dl.Newest)})
			i, j = i+1, j+1
		}
	}
	return out
}
