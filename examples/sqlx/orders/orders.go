// Package orders is a small orders service on sqlx. Creating an order
// writes the order row and its "order.created" event in one *sqlx.Tx: the
// event is published if and only if the order commits.
package orders

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

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

// Order is a row of the orders table.
type Order struct {
	ID         string `db:"id"`
	Customer   string `db:"customer"`
	TotalCents int    `db:"total_cents"`
}

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
//
// sqlx picks the placeholder style from the driver name it was opened with
// ($1 for "postgres" and "pgx", ? for "mysql" and "sqlite3"). The pure-Go
// SQLite driver's name, "sqlite", is not in its list: it falls back to ?,
// which is right for SQLite; sqlx.BindDriver("sqlite", sqlx.QUESTION) makes
// that explicit.
type Service struct {
	DB *sqlx.DB
	// Outbox is usually an *outbox.Outbox; unit tests may pass an
	// outboxtest.Recorder.
	Outbox outbox.Enqueuer
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
	o := Order{ID: newOrderID(), Customer: customer, TotalCents: totalCents}
	value, err := json.Marshal(OrderCreated{OrderID: o.ID, Customer: o.Customer, TotalCents: o.TotalCents})
	if err != nil {
		return "", err
	}

	tx, err := s.DB.BeginTxx(ctx, nil)
	if err != nil {
		return "", err
	}
	defer tx.Rollback() // a no-op once committed

	if _, err := tx.NamedExecContext(ctx,
		`INSERT INTO orders (id, customer, total_cents) VALUES (:id, :customer, :total_cents)`, o); err != nil {
		return "", fmt.Errorf("orders: insert: %w", err)
	}

	// *sqlx.Tx embeds *sql.Tx, so it is an outbox.Execer as it is. Trap:
	// s.DB (a *sqlx.DB) is one too and compiles just as well, but then the
	// event commits on its own, at once, even if this transaction rolls
	// back. outbox.Config.Logger warns once when it sees one (a *sqlx.DB can
	// begin transactions, so it is no transaction).
	if err := s.Outbox.Enqueue(ctx, tx, outbox.Message{
		Topic:   TopicOrderCreated,
		Key:     []byte(o.ID),
		Value:   value,
		Headers: []outbox.Header{{Key: "content-type", Value: []byte("application/json")}},
	}); err != nil {
		return "", err
	}

	// The credit check runs last on purpose: when it fails, everything
	// written above, the order row and its event alike, is rolled back.
	var total int64
	if err := tx.GetContext(ctx, &total,
		tx.Rebind(`SELECT COALESCE(SUM(total_cents), 0) FROM orders WHERE customer = ?`), customer); err != nil {
		return "", fmt.Errorf("orders: credit check: %w", err)
	}
	if limit := s.creditLimit(); total > int64(limit) {
		return "", fmt.Errorf("%w: %s would owe %d cents, the limit is %d", ErrCreditLimitExceeded, customer, total, limit)
	}

	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("orders: commit: %w", err)
	}
	return o.ID, nil
}

// OrdersOf returns the orders of customer.
func (s *Service) OrdersOf(ctx context.Context, customer string) ([]Order, error) {
	var out []Order
	err := s.DB.SelectContext(ctx, &out,
		s.DB.Rebind(`SELECT id, customer, total_cents FROM orders WHERE customer = ? ORDER BY id`), customer)
	return out, err
}

func (s *Service) creditLimit() int {
	if s.CreditLimitCents > 0 {
		return s.CreditLimitCents
	}
	return DefaultCreditLimitCents
}

func newOrderID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "ord_" + hex.EncodeToString(b[:])
}
