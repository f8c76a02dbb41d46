// Package gateway is hookstream's HTTP front door: the webhook routes of the four providers and
// EventService's HTTP routes, on one grpc-gateway mux.
//
// A webhook request goes through, in order: a request id; POST only (405); the route's provider
// and, for listeners, a configured listener id (404 with an empty body otherwise); the content
// type (JSON or none, 415 otherwise); a place among the requests handled at once (429 with
// Retry-After when they are all taken); the body, read once up to the limit (413); authenticity,
// checked on the exact raw bytes before any parsing (401, never stored); JSON syntax (400, the raw
// body quarantined); then the gateway mux, which converts the JSON into the RPC's request and
// calls the ingestion core in-process (RegisterWebhookServiceHandlerServer: no gRPC hop). The core
// answers only after the durable append; its errors become a google.rpc.Status JSON body with the
// matching HTTP status (400 with the violated fields, 404, 503 with Retry-After).
package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/convert"
	"github.com/hookstream/hookstream/server/eventlog"
	"github.com/hookstream/hookstream/server/ingest"
)

// DefaultBodyLimit is the largest webhook body accepted by default: 1 MiB.
const DefaultBodyLimit = 1 << 20

// DefaultMaxInFlight is how many webhook requests are handled at once by default.
const DefaultMaxInFlight = 2048

// RetryAfter is the Retry-After a 503 or a 429 carries, in seconds.
const RetryAfter = "5"

// Verifier checks the authenticity of one request on its exact raw body (package verify
// provides them). A nil error means authentic.
type Verifier interface {
	Verify(h http.Header, query url.Values, body []byte) error
}

// Listener is a configured webhook listener.
type Listener struct {
	// Verifier checks its requests (Bearer tokens, optionally an HMAC header).
	Verifier Verifier
	// DedupHeader names the request header whose value is the notification's dedup id. Empty:
	// the dedup key is a hash of the body.
	DedupHeader string
}

// Options configures New.
type Options struct {
	// Webhooks is the ingestion core the webhook routes call in-process. Required.
	Webhooks hookstreamv1.WebhookServiceServer
	// Events is a client connection to the gRPC server, for EventService's HTTP routes (Tail is a
	// stream, which needs one). Nil: those routes are not served.
	Events *grpc.ClientConn
	// Log receives the raw bodies the front door must quarantine. Required.
	Log *eventlog.Log
	// MoveAPI, Movement and MVMNT check each provider's requests. A nil Verifier accepts nothing
	// (401): hookstream is secure by default.
	MoveAPI, Movement, MVMNT Verifier
	// Listeners by lower-case id.
	Listeners map[string]Listener
	// BodyLimit is the largest body accepted; DefaultBodyLimit when 0.
	BodyLimit int64
	// MaxInFlight bounds the webhook requests handled at once, from reading the body to the
	// answer; DefaultMaxInFlight when 0. A request beyond it is answered 429 with Retry-After at
	// once instead of queueing: a burst then costs neither memory (each request holds up to
	// BodyLimit) nor latency that would run into the provider's timeout, and the provider
	// retries later.
	MaxInFlight int
	// Logger receives rejected requests (never secrets or bodies).
	Logger *slog.Logger
}

// Handler is the front door. It is an http.Handler, safe for concurrent use.
type Handler struct {
	o            Options
	mux          *runtime.ServeMux
	inFlight     chan struct{} // one element per webhook request being handled
	unauthorized atomic.Int64
	overloaded   atomic.Int64
}

// New builds the front door. ctx bounds the client connection's use by the EventService routes.
func New(ctx context.Context, o Options) (*Handler, error) {
	if o.BodyLimit <= 0 {
		o.BodyLimit = DefaultBodyLimit
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{o: o, inFlight: make(chan struct{}, o.MaxInFlight)}
	h.mux = runtime.NewServeMux(
		// One JSON mapping for every content type: the front door has already checked the
		// content type, and providers send "application/json" with or without charset, or none.
		runtime.WithMarshalerOption(runtime.MIMEWildcard, convert.Marshaler()),
		// Errors become a google.rpc.Status body; conversion errors of webhook bodies are
		// quarantined first; 503s carry Retry-After.
		runtime.WithErrorHandler(h.handleError),
		// Request headers are not turned into gRPC metadata: the in-process core does not read
		// it, and copying every header costs time on each webhook.
		runtime.WithIncomingHeaderMatcher(func(string) (string, bool) { return "", false }),
	)
	if err := hookstreamv1.RegisterWebhookServiceHandlerServer(ctx, h.mux, o.Webhooks); err != nil {
		return nil, err
	}
	if o.Events != nil {
		if err := hookstreamv1.RegisterEventServiceHandler(ctx, h.mux, o.Events); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// Unauthorized returns how many requests were answered 401.
func (h *Handler) Unauthorized() int64 { return h.unauthorized.Load() }

// Overloaded returns how many requests were answered 429 because MaxInFlight were being handled.
func (h *Handler) Overloaded() int64 { return h.overloaded.Load() }

// route is the webhook route of a request.
type route struct {
	provider hookstreamv1.Provider
	verifier Verifier
	listener *Listener
	id       string // listener id
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := requestID(r)
	w.Header().Set("X-Request-Id", id)
	if !strings.HasPrefix(r.URL.Path, "/webhooks/") {
		if strings.HasSuffix(r.URL.Path, ":tail") {
			// Tail streams for as long as the client reads: lift the server's write timeout.
			http.NewResponseController(w).SetWriteDeadline(time.Time{})
		}
		h.mux.ServeHTTP(w, r)
		return
	}
	rt, ok := h.route(r.URL.Path)
	if !ok {
		// Unknown routes and unknown (or malformed) listener ids: 404 with an empty body, as the
		// listener contract says, so nothing tells a prober which ids exist.
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.fail(w, rt, http.StatusMethodNotAllowed, codes.Unimplemented, "method_not_allowed", "only POST is accepted")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			h.fail(w, rt, http.StatusUnsupportedMediaType, codes.InvalidArgument, "unsupported_media_type", "the body must be JSON")
			return
		}
	}
	select {
	case h.inFlight <- struct{}{}:
		defer func() { <-h.inFlight }()
	default:
		h.overloaded.Add(1)
		h.fail(w, rt, http.StatusTooManyRequests, codes.ResourceExhausted, "overloaded", "too many requests at once, retry later")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.o.BodyLimit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.fail(w, rt, http.StatusRequestEntityTooLarge, codes.InvalidArgument, "body_too_large", "the body exceeds the size limit")
			return
		}
		h.fail(w, rt, http.StatusBadRequest, codes.InvalidArgument, "body_unreadable", "the body could not be read")
		return
	}
	if rt.verifier == nil {
		h.unauthenticated(w, r, rt, id, errNotConfigured)
		return
	}
	if err := rt.verifier.Verify(r.Header, r.URL.Query(), body); err != nil {
		h.unauthenticated(w, r, rt, id, err)
		return
	}

	d := ingest.Delivery{
		Raw:        body,
		Source:     r.URL.Path,
		RequestID:  id,
		Headers:    keptHeaders(r.Header),
		ReceivedAt: time.Now(),
	}
	switch {
	case rt.provider == hookstreamv1.Provider_PROVIDER_MOVEAPI:
		d.WebhookID = svixID(r.Header)
	case rt.listener != nil && rt.listener.DedupHeader != "":
		d.DedupID = r.Header.Get(rt.listener.DedupHeader)
	}
	ctx := ingest.NewContext(r.Context(), d)
	state := &requestState{delivery: d, provider: rt.provider}
	ctx = context.WithValue(ctx, stateKey{}, state)

	if !json.Valid(body) {
		h.quarantineMalformed(ctx, state, "the body is not valid JSON")
		writeStatus(w, rt, http.StatusBadRequest, malformedStatus("the body is not valid JSON"))
		return
	}
	// The gateway reads the body again from the bytes already read and verified. Query
	// parameters are dropped: they carried the Movement token, and none is part of a webhook.
	// A shallow copy: Clone would deep-copy the headers on every webhook for nothing.
	r2 := r.WithContext(ctx)
	u := *r.URL
	u.RawQuery = ""
	r2.URL = &u
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	h.mux.ServeHTTP(w, r2)
}

var errNotConfigured = errors.New("no credentials configured for this route")

func (h *Handler) route(path string) (route, bool) {
	switch path {
	case "/webhooks/moveapi":
		return route{provider: hookstreamv1.Provider_PROVIDER_MOVEAPI, verifier: h.o.MoveAPI}, true
	case "/webhooks/movement":
		return route{provider: hookstreamv1.Provider_PROVIDER_MOVEMENT, verifier: h.o.Movement}, true
	case "/webhooks/mvmnt":
		return route{provider: hookstreamv1.Provider_PROVIDER_MVMNT, verifier: h.o.MVMNT}, true
	}
	rest, ok := strings.CutPrefix(path, "/webhooks/v1/listeners/")
	if !ok {
		return route{}, false
	}
	id, ok := strings.CutSuffix(rest, "/notify")
	if !ok {
		return route{}, false
	}
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return route{}, false
	}
	l, ok := h.o.Listeners[strings.ToLower(id)]
	if !ok {
		return route{}, false
	}
	return route{provider: hookstreamv1.Provider_PROVIDER_LISTENER, verifier: l.Verifier, listener: &l, id: id}, true
}

func (h *Handler) unauthenticated(w http.ResponseWriter, r *http.Request, rt route, id string, err error) {
	h.unauthorized.Add(1)
	h.o.Logger.Warn("webhook rejected: not authentic", "provider", rt.provider.String(), "path", r.URL.Path, "request_id", id, "remote", r.RemoteAddr, "reason", err.Error())
	h.fail(w, rt, http.StatusUnauthorized, codes.Unauthenticated, "unauthenticated", "the request is not authentic")
}

// fail answers an error the front door itself found, in the route's error format.
func (h *Handler) fail(w http.ResponseWriter, rt route, httpStatus int, code codes.Code, reason, msg string) {
	st := status.New(code, msg)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: strings.ToUpper(reason), Domain: "hookstream"}); err == nil {
		st = d
	}
	writeStatus(w, rt, httpStatus, st)
}

// writeStatus writes st as the body: a google.rpc.Status, or on a listener route the listener
// contract's {"error":{"code","message"}}.
func writeStatus(w http.ResponseWriter, rt route, httpStatus int, st *status.Status) {
	w.Header().Set("Content-Type", "application/json")
	if httpStatus == http.StatusServiceUnavailable || httpStatus == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", RetryAfter)
	}
	w.WriteHeader(httpStatus)
	if rt.listener != nil {
		json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": listenerCode(httpStatus), "message": st.Message()}})
		return
	}
	b, err := convert.MarshalOptions.Marshal(st.Proto())
	if err != nil {
		return
	}
	w.Write(b)
}

func listenerCode(httpStatus int) string {
	switch httpStatus {
	case http.StatusUnauthorized:
		return "UNAUTHORIZED"
	case http.StatusBadRequest:
		return "BAD_REQUEST"
	case http.StatusRequestEntityTooLarge:
		return "PAYLOAD_TOO_LARGE"
	case http.StatusMethodNotAllowed:
		return "METHOD_NOT_ALLOWED"
	case http.StatusUnsupportedMediaType:
		return "UNSUPPORTED_MEDIA_TYPE"
	case http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	case http.StatusTooManyRequests:
		return "TOO_MANY_REQUESTS"
	case http.StatusNotFound:
		return "NOT_FOUND"
	}
	return "ERROR"
}

// requestState is what the error handler needs to know about a webhook request.
type requestState struct {
	delivery ingest.Delivery
	provider hookstreamv1.Provider
}

type stateKey struct{}

// handleError is the gateway's error handler. An INVALID_ARGUMENT that did not come from the
// core is the gateway's failure to convert the JSON into the request (a wrong type, say): the raw
// body is quarantined as malformed before answering.
func (h *Handler) handleError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	st := status.Convert(err)
	state, _ := r.Context().Value(stateKey{}).(*requestState)
	var rt route
	if state != nil {
		rt, _ = h.route(r.URL.Path)
		if st.Code() == codes.InvalidArgument && len(st.Details()) == 0 {
			h.quarantineMalformed(ctx, state, st.Message())
			st = malformedStatus(st.Message())
		}
	}
	writeStatus(w, rt, runtime.HTTPStatusFromCode(st.Code()), st)
}

func malformedStatus(msg string) *status.Status {
	st := status.New(codes.InvalidArgument, "the body does not have the provider's JSON shape")
	br := &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "body", Description: msg, Reason: "MALFORMED"}}}
	if d, err := st.WithDetails(br); err == nil {
		return d
	}
	return st
}

func (h *Handler) quarantineMalformed(ctx context.Context, state *requestState, detail string) {
	entry := &hookstreamv1.QuarantineEntry{
		Id:            uuid.Must(uuid.NewV7()).String(),
		Reason:        hookstreamv1.QuarantineEntry_REASON_MALFORMED,
		Detail:        detail,
		Provider:      state.provider,
		Source:        state.delivery.Source,
		Raw:           state.delivery.Raw,
		Headers:       state.delivery.Headers,
		ReceivedAt:    timestamppb.New(state.delivery.ReceivedAt),
		QuarantinedAt: timestamppb.Now(),
		RequestId:     state.delivery.RequestID,
	}
	if err := ingest.Quarantine(context.WithoutCancel(ctx), h.o.Log, entry); err != nil {
		h.o.Logger.Error("quarantine failed", "request_id", state.delivery.RequestID, "err", err)
	}
}

// keptHeaders are the request headers kept with a quarantined payload: what identifies and
// types it, never credentials or signatures.
func keptHeaders(h http.Header) map[string]string {
	out := map[string]string{}
	for _, k := range []string{"Content-Type", "User-Agent", "Svix-Id", "Svix-Timestamp", "Webhook-Id", "Webhook-Timestamp"} {
		if v := h.Get(k); v != "" {
			out[strings.ToLower(k)] = v
		}
	}
	if id := svixID(h); id != "" {
		out[ingest.HeaderWebhookID] = id
	}
	return out
}

func svixID(h http.Header) string {
	if id := h.Get("Svix-Id"); id != "" {
		return id
	}
	return h.Get("Webhook-Id")
}

// requestID keeps a sane incoming X-Request-Id, else makes one.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 128 && isPrintableASCII(id) {
		return id
	}
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
