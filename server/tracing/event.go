package tracing

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel/trace"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
)

// W3C limits on a stored "tracestate": the whole value, and the entries removed first when it is
// longer (https://www.w3.org/TR/trace-context/#tracestate-limits).
const (
	maxTraceState = 512
	maxTraceEntry = 128
)

// EventContext returns the trace context an event of a request handled in ctx carries: that of
// ctx's span (hookstream's span of the request, or with tracing off the request's incoming
// context), its tracestate cut to 512 bytes. Nil when ctx has no valid span context.
func EventContext(ctx context.Context) *hookstreamv1.TraceContext {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return nil
	}
	if ts := sc.TraceState(); len(ts.String()) > maxTraceState {
		sc = sc.WithTraceState(truncate(ts))
	}
	tc := &hookstreamv1.TraceContext{}
	Propagator.Inject(trace.ContextWithSpanContext(ctx, sc), carrier{tc})
	return tc
}

// truncate cuts ts to maxTraceState bytes as the W3C recommends: entries longer than
// maxTraceEntry go first, then entries from the end.
func truncate(ts trace.TraceState) trace.TraceState {
	var keys, long []string
	ts.Walk(func(k, v string) bool {
		keys = append(keys, k)
		if len(k)+1+len(v) > maxTraceEntry {
			long = append(long, k)
		}
		return true
	})
	for _, k := range long {
		ts = ts.Delete(k)
	}
	for i := len(keys) - 1; i >= 0 && len(ts.String()) > maxTraceState; i-- {
		ts = ts.Delete(keys[i])
	}
	return ts
}

// ContextOf returns ctx carrying the remote span context of an event's trace context (as a
// consumer's span continues the trace of the request the event came in with); ctx itself when
// the event carries none, or one that does not parse.
func ContextOf(ctx context.Context, e *hookstreamv1.Event) context.Context {
	tc := e.GetTraceContext()
	if tc == nil {
		return ctx
	}
	return Propagator.Extract(ctx, carrier{tc})
}

// carrier reads and writes a TraceContext as the headers of the same names.
type carrier struct{ tc *hookstreamv1.TraceContext }

func (c carrier) Get(key string) string {
	switch strings.ToLower(key) {
	case "traceparent":
		return c.tc.GetTraceparent()
	case "tracestate":
		return c.tc.GetTracestate()
	}
	return ""
}

func (c carrier) Set(key, value string) {
	switch strings.ToLower(key) {
	case "traceparent":
		c.tc.Traceparent = value
	case "tracestate":
		c.tc.Tracestate = value
	}
}

func (c carrier) Keys() []string { return []string{"traceparent", "tracestate"} }
