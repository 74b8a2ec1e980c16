// Package schema holds the ent schema of the orders example. After a
// change, regenerate the ent package (from examples/ent):
//
//	go generate ./ent
package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Order is a customer's order.
type Order struct {
	ent.Schema
}

// Fields of Order.
func (Order) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").MaxLen(40).NotEmpty().Immutable(),
		field.String("customer").MaxLen(255).NotEmpty(),
		field.Int("total_cents").Positive(),
		field.Time("created_at").Default(time.Now).Immutable(),
	}
}

// Indexes of Order.
func (Order) Indexes() []ent.Index {
	return []ent.Index{index.Fields("customer")}
}
