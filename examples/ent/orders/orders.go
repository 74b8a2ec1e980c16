// Package orders is a small orders service on ent. Creating an order writes
// the order row and its "order.created" event in one ent transaction: the
// event is published if and only if the order commits.
package orders

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/outboxrelay/outbox"
	"github.com/outboxrelay/outbox/examples/ent/ent"
	"github.com/outboxrelay/outbox/examples/ent/ent/order"
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

// NewClient returns an ent client over db, a pool of kind sqlite, postgres
// or mysql. Building the client over a *sql.DB you opened yourself (rather
// than ent.Open) lets you pick the driver, here the pure-Go
// modernc.org/sqlite for SQLite, and hand the same pool to
// migrations.Up. ent calls SQLite "sqlite3" whatever the driver.
func NewClient(kind string, db *sql.DB) (*ent.Client, error) {
	var d string
	switch kind {
	case "sqlite":
		d = dialect.SQLite
	case "postgres":
		d = dialect.Postgres
	case "mysql":
		d = dialect.MySQL
	default:
		return nil, fmt.Errorf("orders: unknown database kind %q: want sqlite, postgres or mysql", kind)
	}
	return ent.NewClient(ent.Driver(entsql.OpenDB(d, db))), nil
}

// Migrate creates or updates the service's own tables with ent's automatic
// migration. (The outbox tables come from migrations.Up; ent's migration
// leaves tables it does not know alone.)
//
// Trap: Schema.Create is not safe for concurrent use within one process,
// even on different clients and databases: it mutates the generated,
// package-level table definitions (ent/migrate.Tables). Migrate serializes
// it, which matters to parallel tests and to multi-tenant start-ups.
func Migrate(ctx context.Context, client *ent.Client) error {
	migrateMu.Lock()
	defer migrateMu.Unlock()
	return client.Schema.Create(ctx)
}

var migrateMu sync.Mutex

// Service creates orders.
type Service struct {
	Client *ent.Client
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
	id := newOrderID()
	value, err := json.Marshal(OrderCreated{OrderID: id, Customer: customer, TotalCents: totalCents})
	if err != nil {
		return "", err
	}

	err = WithTx(ctx, s.Client, func(tx *ent.Tx) error {
		// Inside the function, use tx (tx.Order, or tx.Client() to hand
		// to other code) for everything: s.Client is not in the transaction.
		if _, err := tx.Order.Create().
			SetID(id).
			SetCustomer(customer).
			SetTotalCents(totalCents).
			Save(ctx); err != nil {
			return fmt.Errorf("orders: insert: %w", err)
		}

		// *ent.Tx is the outbox.Execer: the code generated with the
		// sql/execquery feature (see ent/generate.go) gives it an
		// ExecContext that runs in ent's own database transaction.
		// Without the feature this line does not compile; there is no
		// need for a *sql.Tx of your own.
		//
		// Trap: the same feature gives *ent.Client an ExecContext too, so
		// s.Client compiles here just as well. It runs outside the
		// transaction: the event commits on its own, at once, and is
		// published even when the order rolls back. outbox.Config.Logger's
		// warning does not catch that one: it recognises executors whose
		// BeginTx returns a *sql.Tx, and ent's returns an *ent.Tx.
		// tx.Client() is fine: it is bound to the transaction.
		if err := s.Outbox.Enqueue(ctx, tx, outbox.Message{
			Topic:   TopicOrderCreated,
			Key:     []byte(id),
			Value:   value,
			Headers: []outbox.Header{{Key: "content-type", Value: []byte("application/json")}},
		}); err != nil {
			return err
		}

		// The credit check runs last on purpose: when it fails, everything
		// written above, the order row and its event alike, is rolled back.
		total, err := tx.Order.Query().
			Where(order.Customer(customer)).
			Aggregate(ent.Sum(order.FieldTotalCents)).
			Int(ctx)
		if err != nil {
			return fmt.Errorf("orders: credit check: %w", err)
		}
		if limit := s.creditLimit(); total > limit {
			return fmt.Errorf("%w: %s would owe %d cents, the limit is %d", ErrCreditLimitExceeded, customer, total, limit)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// OrdersOf returns the orders of customer.
func (s *Service) OrdersOf(ctx context.Context, customer string) ([]*ent.Order, error) {
	return s.Client.Order.Query().Where(order.Customer(customer)).Order(order.ByID()).All(ctx)
}

// WithTx runs fn in a transaction of client: it commits when fn returns nil
// and rolls back when fn returns an error or panics. It is the helper that
// ent's documentation recommends.
func WithTx(ctx context.Context, client *ent.Client, fn func(tx *ent.Tx) error) error {
	tx, err := client.Tx(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if v := recover(); v != nil {
			_ = tx.Rollback()
			panic(v)
		}
	}()
	if err := fn(tx); err != nil {
		if rerr := tx.Rollback(); rerr != nil {
			err = fmt.Errorf("%w (and rolling back: %v)", err, rerr)
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("orders: commit: %w", err)
	}
	return nil
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
