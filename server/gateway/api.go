package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/cloudevent"
	"github.com/hookstream/hookstream/server/convert"
)

// APIOptions configures NewAPI.
type APIOptions struct {
	// Conn is a client connection to the gRPC server that serves EventService and
	// QuarantineService (Tail is a stream, which needs one). Required.
	Conn *grpc.ClientConn
	// Authenticate authenticates each request before it is mapped (401 otherwise) and Forward
	// hands the gRPC server the principal it found, which authorizes the call there, with the
	// same rules as gRPC callers (package auth). Required.
	Authenticate func(http.Handler) http.Handler
	Forward      func(context.Context, *http.Request) metadata.MD
	// StreamWriteTimeout bounds the writing of each message of a stream (Tail): a client that
	// stops reading is cut then, instead of holding its connection, and what is queued for it,
	// for ever. Required; above the heartbeat interval of streams (stream.DefaultHeartbeat),
	// since an idle tail writes nothing else.
	StreamWriteTimeout time.Duration
	// Logger receives failed requests. Nil: discard.
	Logger *slog.Logger
	// Metrics serves GET /metrics (the Prometheus exposition), behind Authenticate like every
	// route: any authenticated principal may read it, and anyone on an open (loopback-only)
	// internal API. Nil: no /metrics.
	Metrics http.Handler
	// OpenAPI is the OpenAPI document served at GET /openapi.json (package gen/openapi). It is
	// served without authentication, to anyone who reaches the internal API: it holds no data and
	// no secret (it is committed in the repository), and tools that read it (API explorers, client
	// generators) rarely send credentials. Nil: no /openapi.json.
	OpenAPI []byte
}

// API is the internal API's HTTP mapping: EventService (GET /v1/events, /v1/events/{id},
// /v1/events:tail, GET /v1/groups, DELETE /v1/groups/{name}), QuarantineService (GET /v1/quarantine, /v1/quarantine/{id}, POST
// /v1/quarantine/{id}:redrive) and GET /metrics, behind authentication, and GET /openapi.json,
// open. It is an http.Handler, safe for concurrent use.
type API struct {
	mux                *runtime.ServeMux
	next               http.Handler
	streamWriteTimeout time.Duration
	metrics            http.Handler
	openAPI            []byte
	logger             *slog.Logger
}

// NewAPI builds the internal API's HTTP handler.
func NewAPI(ctx context.Context, o APIOptions) (*API, error) {
	if o.Conn == nil || o.Authenticate == nil || o.Forward == nil {
		return nil, errors.New("gateway: the API needs a connection, an authenticator and a forwarder")
	}
	if o.StreamWriteTimeout <= 0 {
		return nil, errors.New("gateway: the API needs a positive stream write timeout")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	a := &API{logger: o.Logger, streamWriteTimeout: o.StreamWriteTimeout, metrics: o.Metrics, openAPI: o.OpenAPI}
	a.mux = runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, convert.Marshaler()),
		// Requests for CloudEvents (askCloudEvents gives them this Accept header) are answered in
		// the JSON event format, one event a line on a Tail.
		runtime.WithMarshalerOption(cloudevent.ContentTypeJSON, cloudEventMarshaler{convert.Marshaler()}),
		// The principal the HTTP side authenticated goes to the gRPC server with the call.
		runtime.WithMetadata(o.Forward),
		// Errors of the connection itself (transport, message limits) never reach a client as
		// they are: each code has a public message.
		runtime.WithErrorHandler(a.writeError),
		// Called before each message of a stream is written: each gets its own write deadline.
		runtime.WithForwardResponseOption(a.renewWriteDeadline),
	)
	if err := hookstreamv1.RegisterEventServiceHandler(ctx, a.mux, o.Conn); err != nil {
		return nil, err
	}
	if err := hookstreamv1.RegisterQuarantineServiceHandler(ctx, a.mux, o.Conn); err != nil {
		return nil, err
	}
	a.next = o.Authenticate(http.HandlerFunc(a.serve))
	return a, nil
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/openapi.json" && a.openAPI != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(a.openAPI)))
		if r.Method == http.MethodGet {
			w.Write(a.openAPI)
		}
		return
	}
	a.next.ServeHTTP(w, r)
}

func (a *API) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/metrics" && a.metrics != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		a.metrics.ServeHTTP(w, r)
		return
	}
	if strings.HasSuffix(r.URL.Path, ":tail") {
		// Tail streams for as long as the client reads: the server's write timeout, counted from
		// the request, gives way to one per message (renewWriteDeadline).
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(a.streamWriteTimeout))
	}
	askCloudEvents(r)
	a.mux.ServeHTTP(w, r)
}

// renewWriteDeadline gives each message of a Tail StreamWriteTimeout to be written, from now.
// A client that stops reading fills the socket's buffers, then the write fails at the deadline,
// the stream ends and its connection is closed.
func (a *API) renewWriteDeadline(_ context.Context, w http.ResponseWriter, m proto.Message) error {
	if _, ok := m.(*hookstreamv1.TailResponse); ok {
		// Without support for deadlines (no such server here), the write blocks as before.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(a.streamWriteTimeout))
	}
	return nil
}

// writeError is the API mux's error handler. Statuses whose text may come from the gRPC
// connection itself (transport failures, message size limits) are answered with a public message
// of their code; the others are the services' own.
func (a *API) writeError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	st := status.Convert(err)
	public := map[codes.Code]string{
		codes.Unavailable:       "the event log is unavailable, retry later",
		codes.ResourceExhausted: "the answer is too large, or a limit is reached (open streams, consumer groups): ask for a smaller page, close a stream, or retry later",
		codes.Internal:          "internal error",
		codes.Unknown:           "internal error",
		codes.DataLoss:          "a stored event could not be read",
		codes.DeadlineExceeded:  "the request timed out",
		codes.Canceled:          "the request was canceled",
	}
	if msg, ok := public[st.Code()]; ok {
		a.logger.Warn("internal request failed", "path", r.URL.Path, "code", st.Code().String(), "err", st.Message())
		st = status.New(st.Code(), msg)
	}
	writeStatus(w, false, runtime.HTTPStatusFromCode(st.Code()), st)
}
