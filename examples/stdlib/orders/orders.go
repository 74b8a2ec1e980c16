// Package orders is a small orders service on plain database/sql. Creating
// an order writes the order row and its "order.created" event in one
// *sql.Tx: the event is published if and only if the order commits.
package orders

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/outboxrelay/outbox"
)

// TopicOrderCreated is the topic of OrderCreated events.
const TopicOrderCreated = "order.created"

// DefaultCreditLimitCents is the most a customer may have ordered in total.
const DefaultCreditLimitCents = 50_000

// ErrCreditLimitExceeded is returned when an order would take its customer
// over the credit limit. The order and its event are rolled back.
var ErrCreditLimitExceeded = errors.New("orders: credit limit exceeded")

// ErrInvalidOrder is returned for an order that is rejected before any write.
var ErrInvalidOrder = errors.New("orders: invalid order")

// OrderCreated is the JSON value of an order.created event. Its key is the
// order ID, so all events of one order keep their order.
type OrderCreated struct {
	OrderID    string `json:"order_id"`
	Customer   string `json:"customer"`
	TotalCents int    `json:"total_cents"`
}

// Schema creates the service's own table. It is portable across PostgreSQL,
// MySQL/MariaDB and SQLite, and idempotent. (The outbox tables come from
// migrations.Up.)
const Schema = `CREATE TABLE IF NOT EXISTS orders (
    id          VARCHAR(40)  NOT NULL PRIMARY KEY,
    customer    VARCHAR(255) NOT NULL,
    total_cents BIGINT       NOT NULL
)`

// Service creates orders.
type Service struct {
	DB *sql.DB
	// Outbox is usually an *outbox.Outbox; unit tests may pass an
	// outboxtest.Recorder.
	Outbox outbox.Enqueuer
	// Postgres selects $1-style placeholders instead of ?.
	Postgres bool
	// CreditLimitCents defaults to DefaultCreditLimitCents.
	CreditLimitCents int
}

// CreateOrder inserts an order and enqueues its order.created event in one
// transaction, and returns the new order's ID. If the order would exceed the
// customer's credit limit it returns ErrCreditLimitExceeded, and neither the
// order nor the event exists afterwards.
func (s *Service) CreateOrder(ctx context.Context, customer string, totalCents int) (string, error) {
	if customer == "" || totalCents <= 0 {
		return "", fmt.Errorf("%w: customer %q, total %d cents", ErrInvalidOrder, customer, totalCents)
	}
	id := newOrderID()
	value, err := json.Marshal(OrderCreated{OrderID: id, Customer: customer, TotalCents: totalCents})
	if err != nil {
		return "", err
	}

	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return "", err
	}
	// Rollback after a successful Commit is a harmless no-op (it returns
	// sql.ErrTxDone), so this one line covers every early return below.
	defer tx.Rollback()

	if _, err := tx.ExecContext(ctx, s.q("INSERT INTO orders (id, customer, total_cents) VALUES (?, ?, ?)"),
		id, customer, totalCents); err != nil {
		return "", fmt.Errorf("orders: insert: %w", err)
	}

	// Pass tx, the transaction of the order. Trap: s.DB also has
	// ExecContext and compiles just as well, but then the event is
	// committed on its own, at once, and is published even if this
	// transaction rolls back (outbox.Config.Logger warns about it once).
	if err := s.Outbox.Enqueue(ctx, tx, outbox.Message{
		Topic:   TopicOrderCreated,
		Key:     []byte(id),
		Value:   value,
		Headers: []outbox.Header{{Key: "content-type", Value: []byte("application/json")}},
	}); err != nil {
		return "", err
	}

	// The credit check runs last on purpose: when it fails, everything
	// written above, the order row and its event alike, is rolled back.
	var total int64
	if err := tx.QueryRowContext(ctx, s.q("SELECT COALESCE(SUM(total_cents), 0) FROM orders WHERE customer = ?"),
		customer).Scan(&total); err != nil {
		return "", fmt.Errorf("orders: credit check: %w", err)
	}
	if limit := s.creditLimit(); total > int64(limit) {
		return "", fmt.Errorf("%w: %s would owe %d cents, the limit is %d", ErrCreditLimitExceeded, customer, total, limit)
	}

	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("orders: commit: %w", err)
	}
	return id, nil
}

func (s *Service) creditLimit() int {
	if s.CreditLimitCents > 0 {
		return s.CreditLimitCents
	}
	return DefaultCreditLimitCents
}

// q turns ? placeholders into $1, $2, ... on PostgreSQL. (sqlx's Rebind
// does this for you; see examples/sqlx.)
func (s *Service) q(query string) string {
	if !s.Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func newOrderID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "ord_" + hex.EncodeToString(b[:])
}

// CountOrders returns how many orders customer has.
func (s *Service) CountOrders(ctx context.Context, customer string) (int, error) {
	var n int
	err := s.DB.QueryRowContext(ctx, s.q("SELECT COUNT(*) FROM orders WHERE customer = ?"), customer).Scan(&n)
	return n, err
}
