package outboxotel

import (
	"go.opentelemetry.io/otel/propagation"

	"github.com/outboxrelay/outbox"
)

// HeaderCarrier is a propagation.TextMapCarrier over message headers, for
// propagators: Inject into a *HeaderCarrier, Extract from a HeaderCarrier
// (a consumer can build one from its record's headers).
type HeaderCarrier []outbox.Header

// Get returns the value of the first header called key, or "".
func (c HeaderCarrier) Get(key string) string {
	for _, h := range c {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Set sets the header key to value: it replaces the value of an existing
// header of that name (with a new slice) or appends one.
func (c *HeaderCarrier) Set(key, value string) {
	for i := range *c {
		if (*c)[i].Key == key {
			(*c)[i].Value = []byte(value)
			return
		}
	}
	*c = append(*c, outbox.Header{Key: key, Value: []byte(value)})
}

// Keys returns the header names.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, len(c))
	for i, h := range c {
		keys[i] = h.Key
	}
	return keys
}

var _ propagation.TextMapCarrier = (*HeaderCarrier)(nil)
