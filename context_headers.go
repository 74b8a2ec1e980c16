package outbox

import "context"

// withContextHeaders returns msgs with the headers of Config.ContextHeaders
// added to each (new messages, msgs untouched), or msgs itself when there
// is no hook or it returns nothing: without a hook Enqueue pays nothing.
func (o *Outbox) withContextHeaders(ctx context.Context, msgs []Message) []Message {
	if o.cfg.ContextHeaders == nil {
		return msgs
	}
	extra := o.cfg.ContextHeaders(ctx)
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
