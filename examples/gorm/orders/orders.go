// Package orders is a small orders service on GORM. Creating an order
// writes the order row and its "order.created" event in one GORM
// transaction: the event is published if and only if the order commits.
package orders

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

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

// Order is a row of the orders table. Migrate creates the table.
type Order struct {
	ID         string `gorm:"primaryKey;size:40"`
	Customer   string `gorm:"size:255;not null;index"`
	TotalCents int    `gorm:"not null"`
	CreatedAt  time.Time
}

// OrderCreated is the JSON value of an order.created event. Its key is the
// order ID, so all events of one order keep their order.
type OrderCreated struct {
	OrderID    string `json:"order_id"`
	Customer   string `json:"customer"`
	TotalCents int    `json:"total_cents"`
}

// Migrate creates or updates the service's own tables with GORM's
// AutoMigrate. (The outbox tables come from migrations.Up: leave them out
// of AutoMigrate.)
func Migrate(ctx context.Context, db *gorm.DB) error {
	return db.WithContext(ctx).AutoMigrate(&Order{})
}

// Service creates orders.
type Service struct {
	DB *gorm.DB
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
	order := Order{ID: newOrderID(), Customer: customer, TotalCents: totalCents}
	value, err := json.Marshal(OrderCreated{OrderID: order.ID, Customer: order.Customer, TotalCents: order.TotalCents})
	if err != nil {
		return "", err
	}

	// Transaction commits when the function returns nil and rolls back when
	// it returns an error (or panics).
	err = s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Inside the function, use tx for everything: s.DB is not in the
		// transaction.
		if err := tx.Create(&order).Error; err != nil {
			return fmt.Errorf("orders: insert: %w", err)
		}

		// tx.Statement.ConnPool is the transaction itself (the *sql.Tx that
		// GORM began, or a *gorm.PreparedStmtTX around it with
		// PrepareStmt), and it has ExecContext: it is the outbox.Execer.
		//
		// Trap: s.DB.Statement.ConnPool, and the *sql.DB that s.DB.DB()
		// returns, are the pool outside the transaction. They compile just
		// as well, but the event then commits on its own, at once, and is
		// published even when this transaction rolls back (on SQLite it
		// waits for the write lock that this transaction holds, and fails
		// with "database is locked" after the busy timeout). The test
		// TestTrapOuterPool shows it.
		if err := s.Outbox.Enqueue(ctx, tx.Statement.ConnPool, outbox.Message{
			Topic:   TopicOrderCreated,
			Key:     []byte(order.ID),
			Value:   value,
			Headers: []outbox.Header{{Key: "content-type", Value: []byte("application/json")}},
		}); err != nil {
			return err
		}

		// The credit check runs last on purpose: when it fails, everything
		// written above, the order row and its event alike, is rolled back.
		var total int64
		if err := tx.Model(&Order{}).Select("COALESCE(SUM(total_cents), 0)").
			Where("customer = ?", customer).Scan(&total).Error; err != nil {
			return fmt.Errorf("orders: credit check: %w", err)
		}
		if limit := s.creditLimit(); total > int64(limit) {
			return fmt.Errorf("%w: %s would owe %d cents, the limit is %d", ErrCreditLimitExceeded, customer, total, limit)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return order.ID, nil
}

// OrdersOf returns the orders of customer.
func (s *Service) OrdersOf(ctx context.Context, customer string) ([]Order, error) {
	var out []Order
	err := s.DB.WithContext(ctx).Where("customer = ?", customer).Order("id").Find(&out).Error
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
