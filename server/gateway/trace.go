package gateway

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookstream/hookstream/server/tracing"
)

// traced starts the span of a webhook request (server kind, "POST <route>"), a child of the
// trace context its "traceparent" header carries, and returns its context, the span and the
// writer to answer through. With tracing off the span records nothing, and an incoming context
// is still passed on to the events; only a recording span's answer is watched, for its status.
func (h *Handler) traced(w http.ResponseWriter, r *http.Request, a admitted) (context.Context, trace.Span, http.ResponseWriter) {
	ctx := r.Context()
	// Read without http.Header.Get, which would canonicalise the name on every webhook.
	if len(r.Header["Traceparent"]) > 0 {
		ctx = tracing.Propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	ctx, span := h.tracer.Start(ctx, a.route.spanName, trace.WithSpanKind(trace.SpanKindServer))
	if !span.IsRecording() {
		return ctx, span, w
	}
	span.SetAttributes(
		attribute.String("http.request.method", r.Method),
		attribute.String("http.route", a.route.template),
		attribute.String("url.path", r.URL.Path),
		attribute.String("hookstream.provider", a.route.provider.String()),
		attribute.String("hookstream.request_id", requestIDOf(r)),
	)
	return ctx, span, &statusWriter{ResponseWriter: w}
}

// endSpan ends a webhook request's span, with the status it was answered with when w watched
// it: a 5xx is an error of the span (4xx are the client's, as OpenTelemetry's HTTP conventions
// say for server spans).
func endSpan(span trace.Span, w http.ResponseWriter) {
	if sw, ok := w.(*statusWriter); ok {
		span.SetAttributes(attribute.Int("http.response.status_code", sw.status))
		if sw.status >= http.StatusInternalServerError {
			span.SetStatus(otelcodes.Error, http.StatusText(sw.status))
		}
	}
	span.End()
}

// endVerify ends the verify span of a request refused before its delivery was verified (a span
// that ended at the verification is left as it is: a span takes nothing after its end).
func endVerify(span trace.Span) {
	span.SetStatus(otelcodes.Error, "refused")
	span.End()
}

// statusWriter records the status a response is written with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's deadlines.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
