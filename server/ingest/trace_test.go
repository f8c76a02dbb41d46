package ingest_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/testing/protocmp"

	moveapiv1 "github.com/hookstream/hookstream/gen/hookstream/moveapi/v1"
	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/ingest"
	"github.com/hookstream/hookstream/server/internal/grpctest"
	"github.com/hookstream/hookstream/server/internal/testenv"
	"github.com/hookstream/hookstream/server/tracing"
)

// TestProducerTraceContext sends a webhook through WebhookService over a real gRPC server with
// the stats handler hookstream serves with, the producer's trace context in the call's metadata:
// with tracing on, the call's server span is a child of it, the core's validate and append
// spans are children of the call's, and the event stores the call's span; off, the event stores
// the producer's context as it came.
func TestProducerTraceContext(t *testing.T) {
	t.Parallel()
	const producer = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	cases := []struct {
		name string
		on   bool
	}{
		{name: "on", on: true},
		{name: "off"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := tracetest.NewSpanRecorder()
			var tp trace.TracerProvider = noop.NewTracerProvider()
			if tc.on {
				tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			}
			l := testenv.OpenLog(t)
			in, err := ingest.New(ingest.Options{Log: l, BodyLimit: config.Default().HTTP.BodyLimit, TracerProvider: tp})
			if err != nil {
				t.Fatal(err)
			}
			handler := otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(tracing.Propagator))
			conn := grpctest.ServeWith(t, []grpc.ServerOption{grpc.StatsHandler(handler)}, func(srv *grpc.Server) {
				hookstreamv1.RegisterWebhookServiceServer(srv, in)
			})
			w := &moveapiv1.Webhook{}
			testenv.Sample(t, "moveapi/job_state_started.json", w)
			ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent", producer)
			resp, err := hookstreamv1.NewWebhookServiceClient(conn).ReceiveMoveApiWebhook(ctx, &hookstreamv1.ReceiveMoveApiWebhookRequest{Webhook: w, WebhookId: "msg_trace"})
			if err != nil {
				t.Fatal(err)
			}
			e := stored(t, l, resp.GetReceipt().GetSequence())

			want := &hookstreamv1.TraceContext{Traceparent: producer}
			if tc.on {
				want = producerSpans(t, rec, producer)
			}
			if diff := cmp.Diff(want, e.GetTraceContext(), protocmp.Transform()); diff != "" {
				t.Errorf("stored trace context (-want +got):\n%s", diff)
			}
		})
	}
}

// producerSpans checks the spans of a WebhookService call whose metadata carried traceparent
// (the call's server span, its parent the producer's, and the core's spans its children), and
// returns the trace context of the call's span.
func producerSpans(t *testing.T, rec *tracetest.SpanRecorder, traceparent string) *hookstreamv1.TraceContext {
	t.Helper()
	incoming := trace.SpanContextFromContext(tracing.ContextOf(context.Background(),
		&hookstreamv1.Event{TraceContext: &hookstreamv1.TraceContext{Traceparent: traceparent}}))
	server := serverSpan(t, rec)
	if got := server.Parent(); got.TraceID() != incoming.TraceID() || got.SpanID() != incoming.SpanID() || !got.IsRemote() {
		t.Errorf("call's span's parent: got %v %v remote %v, want the producer's %v %v", got.TraceID(), got.SpanID(), got.IsRemote(), incoming.TraceID(), incoming.SpanID())
	}
	sc := server.SpanContext()
	var children []string
	for _, s := range rec.Ended() {
		if s.Parent().SpanID() == sc.SpanID() {
			children = append(children, s.Name())
		}
	}
	slices.Sort(children)
	if diff := cmp.Diff([]string{"append", "validate"}, children); diff != "" {
		t.Errorf("children of the call's span (-want +got):\n%s", diff)
	}
	return &hookstreamv1.TraceContext{Traceparent: "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"}
}

// serverSpan returns the call's server span, which ends just after the answer is sent.
func serverSpan(t *testing.T, rec *tracetest.SpanRecorder) sdktrace.ReadOnlySpan {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		for _, s := range rec.Ended() {
			if s.SpanKind() == trace.SpanKindServer {
				return s
			}
		}
	}
	t.Fatal("the call's span never ended")
	return nil
}
