package outbox

import "context"

// RecordTracer traces the publication of each record: set it as
// RelayConfig.Tracer. Package outboxotel implements it with OpenTelemetry
// (a producer span per record that continues the trace of the request that
// enqueued it). With no tracer the relay does nothing for it.
type RecordTracer interface {
	// StartPublish is called just before rec is published, from the
	// relay's worker. It may set rec.Headers to a new slice (the slice it
	// gets must not be modified), for example to carry its span's context
	// to the consumer, and returns the function the relay calls once with
	// the record's outcome (nil: the broker has it).
	StartPublish(ctx context.Context, rec *Record) (end func(err error))
}

// startTraces starts the trace of each record of batch; nil without a
// tracer.
func (r *Relay) startTraces(ctx context.Context, batch []Record) []func(error) {
	if r.cfg.Tracer == nil {
		return nil
	}
	ends := make([]func(error), len(batch))
	for i := range batch {
		ends[i] = r.cfg.Tracer.StartPublish(ctx, &batch[i])
	}
	return ends
}

// endTraces ends the traces of startTraces with the records' outcomes.
func endTraces(ends []func(error), errs []error) {
	for i, end := range ends {
		if end != nil && i < len(errs) {
			end(errs[i])
		}
	}
}
