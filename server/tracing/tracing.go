// Package tracing is hookstream's OpenTelemetry tracing: the tracer provider, set up from the
// standard OTEL_* environment variables and off unless they ask for it, the one propagator
// (W3C Trace Context), and the trace context an event carries to its consumers
// (hookstreamv1.TraceContext).
//
// Tracing is on when OTEL_TRACES_EXPORTER is "otlp", or when it is unset and an OTLP endpoint is
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); OTEL_SDK_DISABLED=true or
// OTEL_TRACES_EXPORTER=none turn it off. The OpenTelemetry specification makes "otlp" the default
// exporter, but a hookstream nobody asked to export spans must not send them to a collector that
// is not there: hence the endpoint. Everything else (endpoint, headers, TLS, timeout, sampler,
// batching, resource) is read by the OpenTelemetry SDK and exporters from their own variables.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of hookstream's spans.
const ScopeName = "github.com/hookstream/hookstream"

// Propagator is the propagator of every door: W3C Trace Context ("traceparent", "tracestate").
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// ErrInvalid is wrapped by the errors of OTEL_* values hookstream cannot use.
var ErrInvalid = errors.New("invalid tracing setting")

// Protocols of the OTLP exporter (OTEL_EXPORTER_OTLP_PROTOCOL).
const (
	protocolGRPC = "grpc"
	protocolHTTP = "http/protobuf"
)

// Tracing is the process's tracer provider. Its methods are safe for concurrent use.
type Tracing struct {
	provider trace.TracerProvider
	sdk      *sdktrace.TracerProvider // nil when off
}

// Start sets up tracing from the environment that getenv reads (see the package comment). Off,
// the provider is a no-op: spans cost a context value each and record nothing, and incoming
// trace contexts still pass through to the events. Errors wrap ErrInvalid (a value hookstream
// cannot use) or come from the exporter.
func Start(ctx context.Context, getenv func(string) string) (*Tracing, error) {
	protocol, on, err := exporterOf(getenv)
	if err != nil || !on {
		return &Tracing{provider: noop.NewTracerProvider()}, err
	}
	var exp sdktrace.SpanExporter
	switch protocol {
	case protocolGRPC:
		exp, err = otlptracegrpc.New(ctx)
	default:
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	// service.name first, so that OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override it.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "hookstream")),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Tracing{provider: tp, sdk: tp}, nil
}

// exporterOf reads which exporter the environment asks for: on, with the OTLP protocol.
func exporterOf(getenv func(string) string) (protocol string, on bool, err error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return "", false, nil
	}
	switch exporters := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exporters {
	case "none":
		return "", false, nil
	case "":
		if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
			return "", false, nil
		}
	case "otlp":
	default:
		return "", false, fmt.Errorf("%w: OTEL_TRACES_EXPORTER %q: hookstream exports spans with \"otlp\" only (or \"none\")", ErrInvalid, exporters)
	}
	protocol = getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch protocol {
	case "":
		return protocolHTTP, true, nil // the specification's default
	case protocolGRPC, protocolHTTP:
		return protocol, true, nil
	}
	return "", false, fmt.Errorf("%w: OTLP protocol %q: hookstream exports with \"grpc\" or \"http/protobuf\"", ErrInvalid, protocol)
}

// Provider returns the tracer provider: the SDK's when tracing is on, else a no-op one.
func (t *Tracing) Provider() trace.TracerProvider { return t.provider }

// On reports whether spans are recorded and exported.
func (t *Tracing) On() bool { return t.sdk != nil }

// Shutdown exports the spans still buffered and stops the exporter, within ctx.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	return t.sdk.Shutdown(ctx)
}
