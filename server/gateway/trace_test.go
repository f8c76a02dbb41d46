package gateway_test

import (
	"context"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/testing/protocmp"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/gateway"
	"github.com/hookstream/hookstream/server/ingest"
	"github.com/hookstream/hookstream/server/internal/testenv"
	"github.com/hookstream/hookstream/server/tracing"
)

// A producer's trace context, as a provider that traces its deliveries would send it.
const (
	incomingParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	incomingState  = "vendor=abc,other=1"
)

// tracedDoor is the real front door on the real core, both making spans with tp (nil: tracing
// off), over an embedded event log with EventService on loopback.
func tracedDoor(t *testing.T, tp trace.TracerProvider) *frontDoor {
	t.Helper()
	return startDoorCore(t, nil, func(o *gateway.Options) { o.TracerProvider = tp }, nil, func(o *ingest.Options) { o.TracerProvider = tp })
}

// TestTraceContext sends a webhook of each provider through the real front door, with tracing on
// or off, with or without an incoming "traceparent", and checks the spans recorded (the request's
// server span, a child of the incoming context, with verify, convert, validate and append
// children), the trace context stored with each event, and that a Subscribe consumer receives
// it and starts a span that continues the trace.
func TestTraceContext(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, provider, sample string
		on                     bool
		traceparent, state     string
	}{
		{name: "on_listener_with_traceparent", provider: "listener", sample: "listener/incident_created.json", on: true, traceparent: incomingParent},
		{name: "on_mvmnt_with_tracestate", provider: "mvmnt", sample: "mvmnt/shipment_delivered.json", on: true, traceparent: incomingParent, state: incomingState},
		{name: "on_moveapi_without_traceparent", provider: "moveapi", sample: "moveapi/job_state_started.json", on: true},
		{name: "off_movement_with_traceparent", provider: "movement", sample: "movement/call_finished.json", traceparent: incomingParent, state: incomingState},
		{name: "off_listener_without_traceparent", provider: "listener", sample: "listener/incident_created.json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := tracetest.NewSpanRecorder()
			var tp trace.TracerProvider // nil: off
			if tc.on {
				tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			}
			fd := tracedDoor(t, tp)
			body, err := os.ReadFile("../convert/testdata/" + tc.sample)
			if err != nil {
				t.Fatal(err)
			}
			r := signed(t, fd.url, tc.provider, body)
			if tc.traceparent != "" {
				r.Header.Set("Traceparent", tc.traceparent)
			}
			if tc.state != "" {
				r.Header.Set("Tracestate", tc.state)
			}
			if resp, out := do(t, r); resp.StatusCode != http.StatusOK {
				t.Fatalf("got %d %s, want 200", resp.StatusCode, out)
			}

			want := wantTrace(t, tc.on, tc.traceparent, tc.state, rec)
			stored := testenv.Stored(t, fd.log)
			if len(stored) == 0 {
				t.Fatal("nothing stored")
			}
			for _, e := range stored {
				if diff := cmp.Diff(want, e.GetTraceContext(), protocmp.Transform()); diff != "" {
					t.Errorf("stored trace context (-want +got):\n%s", diff)
				}
			}
			checkConsumer(t, fd, len(stored), want)
		})
	}
}

// wantTrace returns the trace context the events must carry: with tracing on, that of the
// request's server span, which it checks (a child of traceparent when there is one, with its
// four children); off, the incoming context as it came, and no spans at all.
func wantTrace(t *testing.T, on bool, traceparent, state string, rec *tracetest.SpanRecorder) *hookstreamv1.TraceContext {
	t.Helper()
	if !on {
		if traceparent == "" {
			return nil
		}
		return &hookstreamv1.TraceContext{Traceparent: traceparent, Tracestate: state}
	}
	var server sdktrace.ReadOnlySpan
	// The span ends after the answer is written: wait for it.
	waitFor(t, "the request's span ends", func() bool {
		for _, s := range rec.Ended() {
			if s.SpanKind() == trace.SpanKindServer {
				server = s
				return true
			}
		}
		return false
	})
	incoming := trace.SpanContextFromContext(tracing.ContextOf(context.Background(), &hookstreamv1.Event{
		TraceContext: &hookstreamv1.TraceContext{Traceparent: traceparent, Tracestate: state}}))
	if traceparent != "" {
		if got := server.Parent(); got.TraceID() != incoming.TraceID() || got.SpanID() != incoming.SpanID() || !got.IsRemote() {
			t.Errorf("server span's parent: got %v %v remote %v, want the incoming %v %v", got.TraceID(), got.SpanID(), got.IsRemote(), incoming.TraceID(), incoming.SpanID())
		}
	} else if server.Parent().IsValid() {
		t.Errorf("server span without traceparent: got parent %v, want a root span", server.Parent().SpanID())
	}
	var children []string
	for _, s := range rec.Ended() {
		if s.Parent().SpanID() == server.SpanContext().SpanID() {
			children = append(children, s.Name())
		}
	}
	slices.Sort(children)
	if diff := cmp.Diff([]string{"append", "convert", "validate", "verify"}, children); diff != "" {
		t.Errorf("children of the server span %q (-want +got):\n%s", server.Name(), diff)
	}
	sc := server.SpanContext()
	return &hookstreamv1.TraceContext{Traceparent: "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01", Tracestate: state}
}

// checkConsumer subscribes to every stored event, and checks that each delivered event carries
// want and that the consumer's span started from it continues the trace: same trace id, the
// stored span as its remote parent.
func checkConsumer(t *testing.T, fd *frontDoor, n int, want *hookstreamv1.TraceContext) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sub, err := fd.events.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Send(&hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Open_{Open: &hookstreamv1.SubscribeRequest_Open{
		Start: &hookstreamv1.StartPosition{Policy: hookstreamv1.StartPosition_POLICY_ALL}}}}); err != nil {
		t.Fatal(err)
	}
	consumer := tracetest.NewSpanRecorder()
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(consumer)).Tracer("consumer")
	stored := trace.SpanContextFromContext(tracing.ContextOf(ctx, &hookstreamv1.Event{TraceContext: want}))
	for got := 0; got < n; {
		m, err := sub.Recv()
		if err != nil {
			t.Fatalf("after %d of %d events: %v", got, n, err)
		}
		for _, ev := range m.GetEvents().GetEvents() {
			got++
			e := ev.GetEvent()
			if diff := cmp.Diff(want, e.GetTraceContext(), protocmp.Transform()); diff != "" {
				t.Errorf("delivered trace context (-want +got):\n%s", diff)
			}
			_, span := tracer.Start(tracing.ContextOf(ctx, e), "consume", trace.WithSpanKind(trace.SpanKindConsumer))
			span.End()
		}
	}
	for _, s := range consumer.Ended() {
		if want == nil {
			if s.Parent().IsValid() {
				t.Errorf("consumer span of an event without trace context: got parent %v, want a root span", s.Parent().SpanID())
			}
			continue
		}
		if s.SpanContext().TraceID() != stored.TraceID() || s.Parent().SpanID() != stored.SpanID() {
			t.Errorf("consumer span: got trace %v parent %v, want trace %v parent %v", s.SpanContext().TraceID(), s.Parent().SpanID(), stored.TraceID(), stored.SpanID())
		}
	}
}

// TestTraceContextTail checks that Tail hands the stored trace context to its reader too.
func TestTraceContextTail(t *testing.T) {
	t.Parallel()
	fd := tracedDoor(t, nil)
	body, err := os.ReadFile("../convert/testdata/listener/incident_created.json")
	if err != nil {
		t.Fatal(err)
	}
	r := signed(t, fd.url, "listener", body)
	r.Header.Set("Traceparent", incomingParent)
	if resp, out := do(t, r); resp.StatusCode != http.StatusOK {
		t.Fatalf("got %d %s, want 200", resp.StatusCode, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tail, err := fd.events.Tail(ctx, &hookstreamv1.TailRequest{Start: &hookstreamv1.StartPosition{Policy: hookstreamv1.StartPosition_POLICY_ALL}})
	if err != nil {
		t.Fatal(err)
	}
	for {
		m, err := tail.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if e := m.GetEvent(); e != nil {
			want := &hookstreamv1.TraceContext{Traceparent: incomingParent}
			if diff := cmp.Diff(want, e.GetTraceContext(), protocmp.Transform(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("tailed trace context (-want +got):\n%s", diff)
			}
			return
		}
	}
}
