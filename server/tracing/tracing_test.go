package tracing

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
)

// TestExporterOf checks which OTEL_* settings turn tracing on, with which protocol, and which are
// refused.
func TestExporterOf(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name         string
		env          map[string]string
		wantProtocol string
		wantOn       bool
		wantErr      error
	}{
		{name: "nothing_set", env: nil},
		{name: "endpoint_set", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, wantProtocol: protocolHTTP, wantOn: true},
		{name: "traces_endpoint_set", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, wantProtocol: protocolHTTP, wantOn: true},
		{name: "exporter_otlp_grpc", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, wantProtocol: protocolGRPC, wantOn: true},
		{name: "traces_protocol_wins", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, wantProtocol: protocolHTTP, wantOn: true},
		{name: "exporter_none_beside_endpoint", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}},
		{name: "sdk_disabled", env: map[string]string{"OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_EXPORTER": "otlp"}},
		{name: "exporter_unknown", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, wantErr: ErrInvalid},
		{name: "protocol_json", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, wantErr: ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			protocol, on, err := exporterOf(func(k string) string { return tc.env[k] })
			if !errors.Is(err, tc.wantErr) || protocol != tc.wantProtocol || on != tc.wantOn {
				t.Errorf("got %q %v %v, want %q %v %v", protocol, on, err, tc.wantProtocol, tc.wantOn, tc.wantErr)
			}
		})
	}
}

// TestStartOff checks that without settings Start makes a provider that records nothing.
func TestStartOff(t *testing.T) {
	t.Parallel()
	tr, err := Start(context.Background(), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if _, span := tr.Provider().Tracer(ScopeName).Start(context.Background(), "x"); tr.On() || span.IsRecording() {
		t.Errorf("got on %v recording %v, want neither", tr.On(), span.IsRecording())
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

// TestEventContext checks the round trip of a span context through an event's TraceContext, the
// tracestate's 512-byte bound, and contexts that carry nothing.
func TestEventContext(t *testing.T) {
	t.Parallel()
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	long := "big=" + strings.Repeat("x", 200)
	var many []string
	for i := range 32 {
		many = append(many, "k"+strings.Repeat(string(rune('a'+i%26)), 10)+string(rune('a'+i/26))+"="+strings.Repeat("v", 20))
	}
	cases := []struct {
		name      string
		in        *hookstreamv1.TraceContext
		want      *hookstreamv1.TraceContext
		wantState func(string) bool
	}{
		{name: "no_context", in: nil, want: nil},
		{name: "malformed_traceparent", in: &hookstreamv1.TraceContext{Traceparent: "00-zz-00f067aa0ba902b7-01"}, want: nil},
		{name: "traceparent", in: &hookstreamv1.TraceContext{Traceparent: parent}, want: &hookstreamv1.TraceContext{Traceparent: parent}},
		{name: "tracestate_kept", in: &hookstreamv1.TraceContext{Traceparent: parent, Tracestate: "a=1,b=2"}, want: &hookstreamv1.TraceContext{Traceparent: parent, Tracestate: "a=1,b=2"}},
		{name: "tracestate_long_entry_dropped_first", in: &hookstreamv1.TraceContext{Traceparent: parent, Tracestate: strings.Join(append([]string{"first=1", long}, many[:15]...), ",")},
			wantState: func(s string) bool {
				return len(s) <= maxTraceState && !strings.Contains(s, "big=") && strings.HasPrefix(s, "first=1,")
			}},
		{name: "tracestate_cut_from_the_end", in: &hookstreamv1.TraceContext{Traceparent: parent, Tracestate: strings.Join(many, ",")},
			wantState: func(s string) bool {
				return len(s) <= maxTraceState && strings.HasPrefix(s, many[0]+",") && !strings.Contains(s, many[31])
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := ContextOf(context.Background(), &hookstreamv1.Event{TraceContext: tc.in})
			got := EventContext(ctx)
			if tc.wantState != nil {
				if got.GetTraceparent() != parent || !tc.wantState(got.GetTracestate()) {
					t.Errorf("got %q %q (%d bytes)", got.GetTraceparent(), got.GetTracestate(), len(got.GetTracestate()))
				}
				return
			}
			if got.GetTraceparent() != tc.want.GetTraceparent() || got.GetTracestate() != tc.want.GetTracestate() || (got == nil) != (tc.want == nil) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if tc.want != nil && !trace.SpanContextFromContext(ctx).IsRemote() {
				t.Error("extracted span context is not remote")
			}
		})
	}
}
