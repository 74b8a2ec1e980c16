// Package chaos is the fault-injection suite of the outbox: for each
// dialect it runs several real relay processes (cmd/relay), an in-process
// Kafka-protocol broker and concurrent writers, and meanwhile kills, pauses,
// adds and removes relays, restarts the broker, makes it fail produce
// requests, and kills database connections. At the end it reads every
// record back and compares them with what the database says committed.
//
// It has only tests:
//
//	go test ./test/chaos -count=1 -v
//	OUTBOX_CHAOS_DURATION=10m go test ./test/chaos -count=1 -v -timeout 40m
//
// See chaos_test.go for the knobs.
package chaos
