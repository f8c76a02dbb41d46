// Package gateway is hookstream's HTTP front door. Webhook requests go one way: the grpc-gateway
// mux matches the route (the routes are the google.api.http annotations of WebhookService, the
// one route table); a mux middleware then admits the request (a known listener, a JSON content
// type, the credentials its headers carry, else 401 before anything else is spent; a free place
// among http.max_in_flight, or among http.max_unverified_in_flight while only a body signature
// can prove it, else 429), reads the body once up to the limit (413) and within
// http.body_read_timeout (408), checks its signatures on the exact raw bytes (401, never
// stored), and hands the
// ingestion core one explicit, verified ingest.Delivery; the generated handler calls the core
// in-process (RegisterWebhookServiceHandlerServer: no gRPC hop), which decodes, validates and
// stores it and answers only after the durable append. The core's errors come back as gRPC
// statuses and are written as the route's error body with the matching HTTP status (400 with the
// violated fields, 404, 503 with Retry-After); nothing here decodes, quarantines or guesses.
//
// The internal API's HTTP mapping (EventService and QuarantineService) is another handler, NewAPI,
// served on the internal listener: the public door serves webhooks only.
package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/convert"
	"github.com/hookstream/hookstream/server/ingest"
	"github.com/hookstream/hookstream/server/logs"
	"github.com/hookstream/hookstream/server/tracing"
	"github.com/hookstream/hookstream/server/verify"
)

// RetryAfter is the Retry-After a 503 or a 429 carries, in seconds.
const RetryAfter = "5"

// Verifier checks the authenticity of one request, its headers before the body is read and then
// its exact raw body (package verify provides them).
type Verifier = verify.Verifier

// Listener is a configured webhook listener.
type Listener struct {
	// Verifier checks its requests (Bearer tokens, optionally an HMAC header). Nil accepts
	// nothing.
	Verifier Verifier
	// DedupHeader names the request header whose value is the notification's dedup id. Empty:
	// the dedup key is a hash of the body.
	DedupHeader string
}

// Options configures New.
type Options struct {
	// Webhooks is the ingestion core the webhook routes call in-process. Required.
	Webhooks hookstreamv1.WebhookServiceServer
	// MoveAPI, Movement and MVMNT check each provider's requests. A nil Verifier accepts nothing
	// (401): hookstream is secure by default.
	MoveAPI, Movement, MVMNT Verifier
	// Listeners by canonical (lower-case) id.
	Listeners map[string]Listener
	// BodyLimit is the largest body accepted (413 above). Required.
	BodyLimit int64
	// MaxInFlight bounds the authenticated webhook requests handled at once: from reading the
	// body to the answer when the headers carry the credentials, from the checked signature to
	// the answer otherwise. Required. A request beyond it is answered 429 with Retry-After at
	// once instead of queueing: a burst then costs neither memory (each request holds up to
	// BodyLimit) nor latency that would run into the provider's timeout, and the provider
	// retries later.
	MaxInFlight int
	// MaxUnverifiedInFlight bounds, apart from MaxInFlight, the requests whose headers prove
	// nothing yet (a Svix signature is over the body) while their body is read and checked.
	// Required. Slow or forged bodies then never hold the places of authentic deliveries.
	MaxUnverifiedInFlight int
	// BodyReadTimeout bounds the reading of a webhook's body, from its start. Required. A body
	// still arriving then is answered 408, logged, and its place freed.
	BodyReadTimeout time.Duration
	// Logger receives rejected requests (never secrets or bodies). Nil: discard.
	Logger *slog.Logger
	// TracerProvider makes each webhook request's span, with a "verify" child; the core's
	// steps are its children too. Nil: no spans (an incoming "traceparent" is still stored with
	// the events).
	TracerProvider trace.TracerProvider
	// Metrics counts the requests the front door refuses (401, 404, 408, 413, 415, 429) and the
	// bodies it reads: the same metrics as the core's (ingest.Options.Metrics). Nil: not
	// exported.
	Metrics *ingest.Metrics
}

// Handler is the front door. It is an http.Handler, safe for concurrent use.
type Handler struct {
	o            Options
	routes       map[string]webhookRoute // by path template
	webhooks     *runtime.ServeMux
	inFlight     places // authenticated webhook requests being handled
	unverified   places // requests whose body signature is not checked yet
	unauthorized atomic.Int64
	overloaded   atomic.Int64
	timedOut     atomic.Int64
	tracer       trace.Tracer
	busyLog      logs.Sometimes // of 429s
	slowLog      logs.Sometimes // of 408s
	rejectLog    logs.Sometimes // of 401s
}

// New builds the front door.
func New(ctx context.Context, o Options) (*Handler, error) {
	switch {
	case o.Webhooks == nil:
		return nil, errors.New("gateway: no webhook service")
	case o.BodyLimit <= 0 || o.MaxInFlight <= 0 || o.MaxUnverifiedInFlight <= 0:
		return nil, errors.New("gateway: body limit and max in flight (verified and unverified) must be positive")
	case o.BodyReadTimeout <= 0:
		return nil, errors.New("gateway: body read timeout must be positive")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		// Counted on a registry no one reads: the hot path needs no test for nil.
		var err error
		if o.Metrics, err = ingest.NewMetrics(prometheus.NewRegistry()); err != nil {
			return nil, err
		}
	}
	routes, err := webhookRoutes(o.Metrics)
	if err != nil {
		return nil, err
	}
	if o.TracerProvider == nil {
		o.TracerProvider = noop.NewTracerProvider()
	}
	h := &Handler{o: o, routes: routes, inFlight: make(places, o.MaxInFlight), unverified: make(places, o.MaxUnverifiedInFlight),
		tracer: o.TracerProvider.Tracer(tracing.ScopeName)}
	h.webhooks = runtime.NewServeMux(
		// Webhook bodies are decoded by the core from the verified bytes, once; the mux only
		// routes and writes the answer (compact JSON: a contract may fix the exact bytes, as the
		// listener's does).
		runtime.WithMarshalerOption(runtime.MIMEWildcard, webhookMarshaler{convert.Marshaler()}),
		// Admission, body, authenticity: before the generated handler calls the core.
		runtime.WithMiddlewares(h.admit),
		// The core's statuses become the route's error body.
		runtime.WithErrorHandler(h.writeError),
		// Unknown paths, wrong methods: 404 with an empty body (nothing tells a prober which
		// listeners exist), 405 with Allow.
		runtime.WithRoutingErrorHandler(h.writeRoutingError),
		// Request headers are not turned into gRPC metadata: the in-process core does not read
		// it, and copying every header costs time on each webhook.
		runtime.WithIncomingHeaderMatcher(func(string) (string, bool) { return "", false }),
		// The core's answer metadata (a listener's receipt, whose body the contract fixes) goes
		// out under its own name, not as Grpc-Metadata-*; no other metadata leaves.
		runtime.WithOutgoingHeaderMatcher(func(key string) (string, bool) {
			return key, key == ingest.MetadataOutcome || key == ingest.MetadataEventID
		}),
	)
	if err := hookstreamv1.RegisterWebhookServiceHandlerServer(ctx, h.webhooks, o.Webhooks); err != nil {
		return nil, err
	}
	return h, nil
}

// Unauthorized returns how many requests were answered 401.
func (h *Handler) Unauthorized() int64 { return h.unauthorized.Load() }

// Overloaded returns how many requests were answered 429 because MaxInFlight or
// MaxUnverifiedInFlight were being handled.
func (h *Handler) Overloaded() int64 { return h.overloaded.Load() }

// TimedOut returns how many requests were answered 408 because their body did not arrive within
// BodyReadTimeout.
func (h *Handler) TimedOut() int64 { return h.timedOut.Load() }

type requestIDKey struct{}

// ServeHTTP implements http.Handler. It serves the webhook routes only: anything else is 404
// with an empty body.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := requestID(r)
	w.Header().Set("X-Request-Id", id)
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
	h.webhooks.ServeHTTP(w, r)
}

// webhookMarshaler is the webhook mux's marshaler: it writes answers as m does and decodes
// nothing, because the core decodes the verified body itself.
type webhookMarshaler struct{ runtime.Marshaler }

func (webhookMarshaler) NewDecoder(io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(any) error { return nil })
}
