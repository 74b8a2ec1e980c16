package outbox

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

// withContextHeaders returns msgs with the headers of Config.ContextHeaders
// and the trace context of Config.Propagator added to each (new messages,
// msgs untouched), or msgs itself when there are none: without a hook and
// without a propagator set Enqueue pays nothing.
func (o *Outbox) withContextHeaders(ctx context.Context, msgs []Message) []Message {
	var extra []Header
	if o.cfg.ContextHeaders != nil {
		extra = o.cfg.ContextHeaders(ctx)
	}
	if trace := o.traceHeaders(ctx); len(trace) > 0 {
		if len(extra) == 0 {
			extra = trace
		} else {
			// ContextHeaders' own header of a name wins.
			extra = mergeHeaders(extra, trace, false)
		}
	}
	if len(extra) == 0 {
		return msgs
	}
	out := make([]Message, len(msgs))
	for i, m := range msgs {
		if len(m.Headers) == 0 {
			m.Headers = extra // shared: Enqueue only reads headers
		} else {
			m.Headers = mergeHeaders(m.Headers, extra, o.cfg.OverrideHeaders)
		}
		out[i] = m
	}
	return out
}

// mergeHeaders returns own plus the headers of extra. A name in both keeps
// own's header, or extra's when override is set.
func mergeHeaders(own, extra []Header, override bool) []Header {
	out := make([]Header, 0, len(own)+len(extra))
	if override {
		for _, h := range own {
			if !hasHeader(extra, h.Key) {
				out = append(out, h)
			}
		}
		return append(out, extra...)
	}
	out = append(out, own...)
	for _, h := range extra {
		if !hasHeader(own, h.Key) {
			out = append(out, h)
		}
	}
	return out
}

func hasHeader(hs []Header, name string) bool {
	for _, h := range hs {
		if h.Key == name {
			return true
		}
	}
	return false
}

// traceHeaders returns the headers Config.Propagator (nil: OpenTelemetry's
// global propagator, looked up at each call) writes for ctx: the W3C trace
// context and baggage with the usual propagators. With no propagator set
// (the global default is a no-op with no fields) it returns nil at once and
// allocates nothing.
func (o *Outbox) traceHeaders(ctx context.Context) []Header {
	p := o.cfg.Propagator
	if p == nil {
		p = otel.GetTextMapPropagator()
	}
	if len(p.Fields()) == 0 {
		return nil
	}
	var c headerCarrier
	p.Inject(ctx, &c)
	return c
}

// headerCarrier is a propagation.TextMapCarrier over headers, for
// traceHeaders. (Package outboxotel has the exported one, HeaderCarrier.)
type headerCarrier []Header

func (c headerCarrier) Get(key string) string {
	for _, h := range c {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func (c *headerCarrier) Set(key, value string) {
	for i := range *c {
		if (*c)[i].Key == key {
			(*c)[i].Value = []byte(value)
			return
		}
	}
	*c = append(*c, Header{Key: key, Value: []byte(value)})
}

func (c headerCarrier) Keys() []string {
	keys := make([]string, len(c))
	for i, h := range c {
		keys[i] = h.Key
	}
	return keys
}

var _ propagation.TextMapCarrier = (*headerCarrier)(nil)
