package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/tracing"
)

// traceFlushTimeout bounds the export of the spans still buffered when hookstream stops.
const traceFlushTimeout = 5 * time.Second

// startTracing sets tracing up from the OTEL_* variables (package tracing); a value it cannot use
// is a configuration error. Export failures are logged, not printed by OpenTelemetry's default
// handler.
func startTracing(ctx context.Context, log *slog.Logger) (*tracing.Tracing, error) {
	tr, err := tracing.Start(ctx, config.Getenv)
	switch {
	case errors.Is(err, tracing.ErrInvalid):
		return nil, fmt.Errorf("%w: %w", config.ErrInvalid, err)
	case err != nil:
		return nil, err
	}
	if tr.On() {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("tracing failed", "err", err) }))
		log.Info("tracing on: spans are exported over OTLP")
	}
	return tr, nil
}

// flushTraces exports the spans still buffered, within traceFlushTimeout.
func (s *Server) flushTraces() {
	ctx, cancel := context.WithTimeout(context.Background(), traceFlushTimeout)
	defer cancel()
	if err := s.trace.Shutdown(ctx); err != nil {
		s.log.Warn("tracing: spans not exported at shutdown", "err", err)
	}
}
