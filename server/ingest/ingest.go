// Package ingest is hookstream's ingestion core, shared by both doors: the gRPC WebhookService
// (internal producers) and the HTTP front door, whose gateway calls the same Service in-process.
// For each webhook it decodes the payload (from the verified bytes of an HTTP delivery), validates
// it, splits an MVMNT delivery into one event per item, computes the dedup key, fills the Event
// envelope, appends to the event log and answers only once the append is durable. Authentic
// payloads it must reject go to the quarantine with the reason, so nothing authentic is lost: a
// request is answered 2xx only when each of its events is stored (or a duplicate of a stored
// one) or quarantined, and 503 when the log could take neither.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	moveapiv1 "github.com/hookstream/hookstream/gen/hookstream/moveapi/v1"
	movementv1 "github.com/hookstream/hookstream/gen/hookstream/movement/v1"
	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/auth"
	"github.com/hookstream/hookstream/server/convert"
	"github.com/hookstream/hookstream/server/eventlog"
	"github.com/hookstream/hookstream/server/tracing"
)

// Delivery is one verified webhook request as the HTTP front door (or a redrive) hands it to the
// core: the exact bytes whose authenticity was checked, and what the request said about them.
// Attached to the context with NewContext, it is the whole input of an RPC: the payload is
// decoded from Raw, once, by the core (the gateway does not decode webhook bodies), and the
// request message the gateway passes is not read.
type Delivery struct {
	// Provider is the provider of the route the request came in through; it must be the RPC's.
	Provider hookstreamv1.Provider
	// Raw is the exact request body.
	Raw []byte
	// Source is where the request came in: the route, with a listener's canonical id.
	Source string
	// Route is the path template of the HTTP route the request came in through, the route label
	// of its metrics; empty for a redrive.
	Route string
	// RequestID is the HTTP request id.
	RequestID string
	// Headers are request headers worth keeping with a quarantined payload (never credentials).
	Headers map[string]string
	// ReceivedAt is when the request arrived.
	ReceivedAt time.Time
	// WebhookID is the verified Svix message id of a Move API request.
	WebhookID string
	// ListenerID is a listener notification's listener, in canonical (lower-case) form.
	ListenerID string
	// DedupID is a listener notification's dedup id from its configured header; empty without.
	DedupID string
	// Redriving is the id of the quarantine entry this delivery redrives (see Redelivery);
	// empty for a delivery from a provider. What a redrive still rejects is answered as usual
	// (INVALID_ARGUMENT, or a quarantined receipt naming this entry) but not quarantined again:
	// the entry it came from is still there, so a failed redrive leaves the quarantine as it was.
	Redriving string
}

type deliveryKey struct{}

// NewContext returns ctx carrying d.
func NewContext(ctx context.Context, d Delivery) context.Context {
	return context.WithValue(ctx, deliveryKey{}, d)
}

// FromContext returns the Delivery attached to ctx, if any.
func FromContext(ctx context.Context) (Delivery, bool) {
	d, ok := ctx.Value(deliveryKey{}).(Delivery)
	return d, ok
}

// Listener is a configured webhook listener.
type Listener struct {
	// DefaultType is the event type of a notification whose body has no "event_type". Required.
	DefaultType string
}

// Options configures a Service.
type Options struct {
	// Log is the event log events and quarantine entries are appended to. Required.
	Log *eventlog.Log
	// Listeners are the configured webhook listeners by canonical (lower-case) id; a
	// notification for another id is NOT_FOUND.
	Listeners map[string]Listener
	// BodyLimit is the largest raw payload accepted, in bytes: the HTTP front door's body limit,
	// which the event log's size budget is derived from. gRPC producers are held to it too.
	// Required.
	BodyLimit int64
	// Logger receives what goes wrong. Nil: discard.
	Logger *slog.Logger
	// TracerProvider makes the spans of the core's steps (convert, validate, append), children
	// of the request's span in the context. Nil: no spans (the request's incoming trace context
	// is still stored with its events).
	TracerProvider trace.TracerProvider
	// Metrics counts the requests the core answers (see Metrics). Nil: not exported.
	Metrics *Metrics
}

// Service implements hookstreamv1.WebhookServiceServer. It is safe for concurrent use.
type Service struct {
	hookstreamv1.UnimplementedWebhookServiceServer
	log       *eventlog.Log
	listeners map[string]Listener
	bodyLimit int64
	logger    *slog.Logger
	tracer    trace.Tracer
	metrics   *Metrics
}

// New returns a Service appending to o.Log.
func New(o Options) (*Service, error) {
	if o.Log == nil {
		return nil, errors.New("ingest: no event log")
	}
	if o.BodyLimit <= 0 {
		return nil, errors.New("ingest: body limit must be positive")
	}
	for id, l := range o.Listeners {
		if id != strings.ToLower(id) || l.DefaultType == "" {
			return nil, fmt.Errorf("ingest: listener %q: ids must be lower case and have a default type", id)
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.TracerProvider == nil {
		o.TracerProvider = noop.NewTracerProvider()
	}
	if o.Metrics == nil {
		// Counted on a registry no one reads: the hot path needs no test for nil.
		var err error
		if o.Metrics, err = NewMetrics(prometheus.NewRegistry()); err != nil {
			return nil, err
		}
	}
	return &Service{log: o.Log, listeners: o.Listeners, bodyLimit: o.BodyLimit, logger: o.Logger, tracer: o.TracerProvider.Tracer(tracing.ScopeName), metrics: o.Metrics}, nil
}

// Ingest ingests a verified delivery: the HTTP front door's path, taken by a redrive. It returns
// the receipts of the request's events.
func (s *Service) Ingest(ctx context.Context, d Delivery) ([]*hookstreamv1.Receipt, error) {
	ctx = NewContext(ctx, d)
	switch d.Provider {
	case hookstreamv1.Provider_PROVIDER_MOVEAPI:
		resp, err := s.ReceiveMoveApiWebhook(ctx, &hookstreamv1.ReceiveMoveApiWebhookRequest{})
		return []*hookstreamv1.Receipt{resp.GetReceipt()}, err
	case hookstreamv1.Provider_PROVIDER_MOVEMENT:
		resp, err := s.ReceiveMovementWebhook(ctx, &hookstreamv1.ReceiveMovementWebhookRequest{})
		return []*hookstreamv1.Receipt{resp.GetReceipt()}, err
	case hookstreamv1.Provider_PROVIDER_MVMNT:
		resp, err := s.ReceiveMvmntDelivery(ctx, &hookstreamv1.ReceiveMvmntDeliveryRequest{})
		return resp.GetReceipts(), err
	case hookstreamv1.Provider_PROVIDER_LISTENER:
		return s.notify(ctx, &hookstreamv1.NotifyListenerRequest{})
	}
	return nil, status.Errorf(codes.FailedPrecondition, "provider %v cannot be ingested", d.Provider)
}

// ReceiveMoveApiWebhook implements hookstreamv1.WebhookServiceServer.
func (s *Service) ReceiveMoveApiWebhook(ctx context.Context, req *hookstreamv1.ReceiveMoveApiWebhookRequest) (*hookstreamv1.ReceiveMoveApiWebhookResponse, error) {
	began := time.Now()
	resp, err := s.receiveMoveAPI(ctx, req)
	s.finish(ctx, hookstreamv1.Provider_PROVIDER_MOVEAPI, began, []*hookstreamv1.Receipt{resp.GetReceipt()}, err)
	return resp, err
}

func (s *Service) receiveMoveAPI(ctx context.Context, req *hookstreamv1.ReceiveMoveApiWebhookRequest) (*hookstreamv1.ReceiveMoveApiWebhookResponse, error) {
	in, err := s.begin(ctx, hookstreamv1.Provider_PROVIDER_MOVEAPI, req.GetRaw(), req.GetWebhook())
	if err != nil {
		return nil, err
	}
	if in.decode {
		req = &hookstreamv1.ReceiveMoveApiWebhookRequest{Webhook: &moveapiv1.Webhook{}, WebhookId: in.d.WebhookID}
		if err := s.decode(ctx, in.d.Raw, req.Webhook); err != nil {
			return nil, s.rejectOne(ctx, in, in.malformed(err.Error()))
		}
	}
	in.d.WebhookID = req.GetWebhookId()
	if err := s.accept(ctx, in, req); err != nil {
		return nil, err
	}
	w := req.GetWebhook()
	e := in.event(convert.MoveAPIType(w), moveAPIKey(req.GetWebhookId(), in.d.Raw), w.GetTimestamp(), in.d.Raw)
	e.Payload = &hookstreamv1.Event_Moveapi{Moveapi: w}
	r, err := s.storeOne(ctx, in, e)
	if err != nil {
		return nil, err
	}
	return &hookstreamv1.ReceiveMoveApiWebhookResponse{Receipt: r}, nil
}

// ReceiveMovementWebhook implements hookstreamv1.WebhookServiceServer.
func (s *Service) ReceiveMovementWebhook(ctx context.Context, req *hookstreamv1.ReceiveMovementWebhookRequest) (*hookstreamv1.ReceiveMovementWebhookResponse, error) {
	began := time.Now()
	resp, err := s.receiveMovement(ctx, req)
	s.finish(ctx, hookstreamv1.Provider_PROVIDER_MOVEMENT, began, []*hookstreamv1.Receipt{resp.GetReceipt()}, err)
	return resp, err
}

func (s *Service) receiveMovement(ctx context.Context, req *hookstreamv1.ReceiveMovementWebhookRequest) (*hookstreamv1.ReceiveMovementWebhookResponse, error) {
	in, err := s.begin(ctx, hookstreamv1.Provider_PROVIDER_MOVEMENT, req.GetRaw(), req.GetWebhook())
	if err != nil {
		return nil, err
	}
	if in.decode {
		req = &hookstreamv1.ReceiveMovementWebhookRequest{Webhook: &movementv1.Webhook{}}
		if err := s.decode(ctx, in.d.Raw, req.Webhook); err != nil {
			return nil, s.rejectOne(ctx, in, in.malformed(err.Error()))
		}
	}
	if err := s.accept(ctx, in, req); err != nil {
		return nil, err
	}
	w := req.GetWebhook()
	e := in.event(convert.MovementType(w), movementKey(w, in.d.Raw), convert.MovementOccurredAt(w), in.d.Raw)
	e.Payload = &hookstreamv1.Event_Movement{Movement: w}
	r, err := s.storeOne(ctx, in, e)
	if err != nil {
		return nil, err
	}
	return &hookstreamv1.ReceiveMovementWebhookResponse{Receipt: r}, nil
}

// Header metadata of a NotifyListener answer: the listener contract fixes the answer's body,
// so the receipt travels beside it, as the HTTP headers Hookstream-Outcome and
// Hookstream-Event-Id on the front door.
const (
	// MetadataOutcome is "stored" or "duplicate".
	MetadataOutcome = "hookstream-outcome"
	// MetadataEventID is the event's id (for a duplicate, the id given to the duplicate).
	MetadataEventID = "hookstream-event-id"
)

// NotifyListener implements hookstreamv1.WebhookServiceServer.
func (s *Service) NotifyListener(ctx context.Context, req *hookstreamv1.NotifyListenerRequest) (*hookstreamv1.NotifyListenerResponse, error) {
	receipts, err := s.notify(ctx, req)
	if err != nil {
		return nil, err
	}
	outcome := "stored"
	if receipts[0].GetDuplicate() {
		outcome = "duplicate"
	}
	// Fails only without a server stream in ctx (a call in-process, not through either door),
	// where no one would read it.
	_ = grpc.SetHeader(ctx, metadata.Pairs(MetadataOutcome, outcome, MetadataEventID, receipts[0].GetEventId()))
	return &hookstreamv1.NotifyListenerResponse{Message: "Event received successfully", Status: "RECEIVED"}, nil
}

// notify receives a listener notification and counts its answer.
func (s *Service) notify(ctx context.Context, req *hookstreamv1.NotifyListenerRequest) ([]*hookstreamv1.Receipt, error) {
	began := time.Now()
	receipts, err := s.receiveListener(ctx, req)
	s.finish(ctx, hookstreamv1.Provider_PROVIDER_LISTENER, began, receipts, err)
	return receipts, err
}

func (s *Service) receiveListener(ctx context.Context, req *hookstreamv1.NotifyListenerRequest) ([]*hookstreamv1.Receipt, error) {
	in, err := s.begin(ctx, hookstreamv1.Provider_PROVIDER_LISTENER, req.GetRaw(), req.GetBody())
	if err != nil {
		return nil, err
	}
	if !in.decode {
		in.d.ListenerID, in.d.DedupID = strings.ToLower(req.GetListenerId()), req.GetDedupId()
	}
	l, ok := s.listeners[in.d.ListenerID]
	if !ok {
		return nil, status.Error(codes.NotFound, "unknown listener")
	}
	if in.decode {
		req = &hookstreamv1.NotifyListenerRequest{ListenerId: in.d.ListenerID, Body: &structpb.Struct{}, DedupId: in.d.DedupID}
		if err := s.decode(ctx, in.d.Raw, req.Body); err != nil {
			return nil, s.rejectOne(ctx, in, in.malformed(err.Error()))
		}
	}
	if err := s.accept(ctx, in, req); err != nil {
		return nil, err
	}
	n := convert.ListenerNotification(in.d.ListenerID, req.GetBody(), l.DefaultType)
	e := in.event(n.GetEventType(), listenerKey(in.d.ListenerID, in.d.DedupID, in.d.Raw), nil, in.d.Raw)
	e.Payload = &hookstreamv1.Event_Listener{Listener: n}
	r, err := s.storeOne(ctx, in, e)
	if err != nil {
		return nil, err
	}
	return []*hookstreamv1.Receipt{r}, nil
}

// incoming is one request on its way in.
type incoming struct {
	d Delivery
	// decode is true when the payload is to be decoded from d.Raw (an HTTP delivery or a
	// redrive), false when the request message carries it (a gRPC producer).
	decode bool
	// trace is the trace context its events carry; nil without.
	trace *hookstreamv1.TraceContext
	// keySpace starts the dedup keys of a gRPC producer's events, "grpc:<principal>/": a
	// producer's keys never meet the keys of the provider's own deliveries or of another
	// producer, so no producer can make a genuine delivery look like a duplicate.
	keySpace string
}

// begin starts a request of provider p: from the Delivery in ctx, or from a gRPC producer's raw
// bytes and payload (the payload's protojson when it sent no raw bytes).
func (s *Service) begin(ctx context.Context, p hookstreamv1.Provider, raw []byte, payload proto.Message) (incoming, error) {
	if d, ok := FromContext(ctx); ok {
		if d.Provider != p {
			s.logger.Error("delivery sent to the wrong rpc", "provider", d.Provider.String(), "rpc_provider", p.String())
			return incoming{}, status.Error(codes.Internal, "internal error")
		}
		if d.ReceivedAt.IsZero() {
			d.ReceivedAt = time.Now()
		}
		return incoming{d: d, decode: true, trace: tracing.EventContext(ctx)}, nil
	}
	if len(raw) == 0 && payload != nil {
		raw, _ = convert.MarshalOptions.Marshal(payload)
	}
	if int64(len(raw)) > s.bodyLimit {
		return incoming{}, status.Errorf(codes.InvalidArgument, "the payload is %d bytes, more than the limit of %d", len(raw), s.bodyLimit)
	}
	// The event records the producer as its source.
	source := "grpc"
	if pr, ok := auth.FromContext(ctx); ok {
		source += ":" + pr.Name
	}
	return incoming{d: Delivery{Provider: p, Raw: raw, Source: source, ReceivedAt: time.Now()}, keySpace: source + "/", trace: tracing.EventContext(ctx)}, nil
}

// decode decodes an HTTP delivery's verified bytes into m: the convert step.
func (s *Service) decode(ctx context.Context, raw []byte, m proto.Message) error {
	_, span := s.tracer.Start(ctx, "convert")
	defer span.End()
	err := convert.Unmarshal(raw, m)
	if err != nil {
		span.SetStatus(otelcodes.Error, "malformed")
	}
	return err
}

// event fills an envelope; the caller sets the payload.
func (in incoming) event(typ, dedupKey string, occurred *timestamppb.Timestamp, raw []byte) *hookstreamv1.Event {
	return &hookstreamv1.Event{
		Id:         uuid.Must(uuid.NewV7()).String(),
		Provider:   in.d.Provider,
		Type:       typ,
		Source:     in.d.Source,
		OccurredAt: occurred,
		ReceivedAt: timestamppb.New(in.d.ReceivedAt),
		DedupKey:   in.keySpace + dedupKey,
		Raw:        raw,
		RequestId:  in.d.RequestID,

		TraceContext: in.trace,
	}
}
