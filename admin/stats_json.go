package admin

import (
	"encoding/json"
	"slices"
	"time"
)

// The parts of Stats, as named in StepFailure.Step.
const (
	StepPending     = "pending"      // Pending, OldestAge, Estimated, the pending counts per topic and shard
	StepRetries     = "retries"      // Retrying, RetryingCapped, Waiting, Errors
	StepDeadLetters = "dead letters" // DeadLetters, DeadLettersCapped, the dead letters per topic
	StepShards      = "shards"       // Shards
	StepRelays      = "relays"       // RelaysAlive, Relays
)

// Read reports whether the part step (StepPending, ...) was read: false
// when it is in s.Failed, and its figures are zero but unknown.
func (s Stats) Read(step string) bool {
	return !slices.ContainsFunc(s.Failed, func(f StepFailure) bool { return f.Step == step })
}

// topicJSON is TopicStats in JSON: the figures of a part not read are
// null.
type topicJSON struct {
	Topic       string         `json:"topic"`
	Pending     *int64         `json:"pending"`
	OldestAge   *time.Duration `json:"oldest_age_ns"`
	DeadLetters *int64         `json:"dead_letters"`
	LastDeadAge *time.Duration `json:"last_dead_age_ns"`
}

// shardJSON is ShardStats in JSON: Pending is null when the pending
// part was not read.
type shardJSON struct {
	ShardStats
	Pending *int64 `json:"pending"`
}

// known returns &v, or nil (JSON null) when the part it belongs to was not
// read.
func known[T any](v T, read bool) *T {
	if !read {
		return nil
	}
	return &v
}

// MarshalJSON writes s with null for every figure of a part that could not
// be read (in Failed), rather than a zero an operator would believe.
func (s Stats) MarshalJSON() ([]byte, error) {
	type plain Stats // without this method
	pending, retries, dead := s.Read(StepPending), s.Read(StepRetries), s.Read(StepDeadLetters)
	out := struct {
		plain
		Pending     *int64         `json:"pending"`
		OldestAge   *time.Duration `json:"oldest_age_ns"`
		Retrying    *int64         `json:"retrying"`
		DeadLetters *int64         `json:"dead_letters"`
		RelaysAlive *int           `json:"relays_alive"`
		Topics      []topicJSON    `json:"topics"`
		Waiting     []Waiting      `json:"waiting"`
		Errors      []ErrorCount   `json:"errors"`
		Shards      []shardJSON    `json:"shards"`
		Relays      []RelayStats   `json:"relays"`
	}{
		plain: plain(s), Pending: known(s.Pending, pending), OldestAge: known(s.OldestAge, pending),
		Retrying: known(s.Retrying, retries), DeadLetters: known(s.DeadLetters, dead),
		RelaysAlive: known(s.RelaysAlive, s.Read(StepRelays)), Topics: []topicJSON{},
	}
	for _, t := range s.Topics {
		out.Topics = append(out.Topics, topicJSON{Topic: t.Topic, Pending: known(t.Pending, pending), OldestAge: known(t.OldestAge, pending),
			DeadLetters: known(t.DeadLetters, dead), LastDeadAge: known(t.LastDeadAge, dead)})
	}
	if retries {
		out.Waiting, out.Errors = orEmpty(s.Waiting), orEmpty(s.Errors)
	}
	if s.Read(StepShards) {
		out.Shards = []shardJSON{}
		for _, sh := range s.Shards {
			out.Shards = append(out.Shards, shardJSON{ShardStats: sh, Pending: known(sh.Pending, pending)})
		}
	}
	if s.Read(StepRelays) {
		out.Relays = orEmpty(s.Relays)
	}
	return json.Marshal(out)
}

// orEmpty returns s, or an empty slice for nil: JSON [] rather than null
// for a part that was read.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
