// Package ingest is hookstream's ingestion core, shared by both doors: the gRPC WebhookService
// (internal producers) and the HTTP front door, whose gateway calls the same Service in-process.
// For each webhook it validates the request (protovalidate), splits an MVMNT delivery into one
// event per item, computes the dedup key, fills the Event envelope, appends to the event log and
// answers only once the append is durable. Authentic payloads it must reject go to the quarantine
// with the reason, so nothing authentic is lost.
package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"buf.build/go/protovalidate"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/convert"
	"github.com/hookstream/hookstream/server/eventlog"
)

// Delivery is what a transport knows about a request beyond its message: the HTTP front door
// attaches it to the context with NewContext before calling Service; gRPC producers need not.
type Delivery struct {
	// Raw is the exact request body. It overrides the request's raw field.
	Raw []byte
	// Source is where the request came in (the HTTP route); "grpc" when empty.
	Source string
	// RequestID is the HTTP request id.
	RequestID string
	// Headers are request headers worth keeping with a quarantined payload (never credentials).
	Headers map[string]string
	// ReceivedAt is when the request arrived; now when zero.
	ReceivedAt time.Time
	// WebhookID is the verified Svix message id of a Move API request. It overrides the
	// request's webhook_id.
	WebhookID string
	// DedupID is a listener notification's dedup id from its configured header. On the HTTP
	// path it overrides the request's dedup_id, even when empty.
	DedupID string
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
	// DefaultType is the event type of a notification whose body has no "event_type".
	DefaultType string
}

// Options configures a Service.
type Options struct {
	// Log is the event log events and quarantine entries are appended to. Required.
	Log *eventlog.Log
	// Listeners are the configured webhook listeners by id; a notification for another id is
	// NOT_FOUND.
	Listeners map[string]Listener
	// Logger receives what goes wrong. Default: discard.
	Logger *slog.Logger
}

// Service implements hookstreamv1.WebhookServiceServer. It is safe for concurrent use.
type Service struct {
	hookstreamv1.UnimplementedWebhookServiceServer
	log       *eventlog.Log
	listeners map[string]Listener
	validator protovalidate.Validator
	logger    *slog.Logger
}

// New returns a Service appending to o.Log.
func New(o Options) (*Service, error) {
	v, err := protovalidate.New()
	if err != nil {
		return nil, fmt.Errorf("protovalidate: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{log: o.Log, listeners: o.Listeners, validator: v, logger: o.Logger}, nil
}

// ReceiveMoveApiWebhook implements hookstreamv1.WebhookServiceServer.
func (s *Service) ReceiveMoveApiWebhook(ctx context.Context, req *hookstreamv1.ReceiveMoveApiWebhookRequest) (*hookstreamv1.ReceiveMoveApiWebhookResponse, error) {
	in := s.start(ctx, hookstreamv1.Provider_PROVIDER_MOVEAPI, req.GetRaw(), req.GetWebhook())
	if d, ok := FromContext(ctx); ok && d.WebhookID != "" {
		req.WebhookId = d.WebhookID
	}
	in.keep(HeaderWebhookID, req.GetWebhookId())
	if err := s.validate(ctx, in, req); err != nil {
		return nil, err
	}
	w := req.GetWebhook()
	e := in.event(convert.MoveAPIType(w), req.GetWebhookId(), w.GetTimestamp())
	e.Payload = &hookstreamv1.Event_Moveapi{Moveapi: w}
	receipts, err := s.append(ctx, e)
	if err != nil {
		return nil, err
	}
	return &hookstreamv1.ReceiveMoveApiWebhookResponse{Receipt: receipts[0]}, nil
}

// ReceiveMovementWebhook implements hookstreamv1.WebhookServiceServer.
func (s *Service) ReceiveMovementWebhook(ctx context.Context, req *hookstreamv1.ReceiveMovementWebhookRequest) (*hookstreamv1.ReceiveMovementWebhookResponse, error) {
	in := s.start(ctx, hookstreamv1.Provider_PROVIDER_MOVEMENT, req.GetRaw(), req.GetWebhook())
	if err := s.validate(ctx, in, req); err != nil {
		return nil, err
	}
	w := req.GetWebhook()
	typ := convert.MovementType(w)
	key := typ + "." + hash(in.raw)
	if id, ok := convert.MovementObjectID(w); ok {
		key = typ + "." + strconv.FormatInt(id, 10)
	}
	e := in.event(typ, key, convert.MovementOccurredAt(w))
	e.Payload = &hookstreamv1.Event_Movement{Movement: w}
	receipts, err := s.append(ctx, e)
	if err != nil {
		return nil, err
	}
	return &hookstreamv1.ReceiveMovementWebhookResponse{Receipt: receipts[0]}, nil
}

// ReceiveMvmntDelivery implements hookstreamv1.WebhookServiceServer.
func (s *Service) ReceiveMvmntDelivery(ctx context.Context, req *hookstreamv1.ReceiveMvmntDeliveryRequest) (*hookstreamv1.ReceiveMvmntDeliveryResponse, error) {
	in := s.start(ctx, hookstreamv1.Provider_PROVIDER_MVMNT, req.GetRaw(), req.GetDelivery())
	if err := s.validate(ctx, in, req); err != nil {
		return nil, err
	}
	items, err := convert.MvmntEvents(req.GetDelivery())
	if err != nil {
		s.quarantine(ctx, in, hookstreamv1.QuarantineEntry_REASON_MALFORMED, err.Error(), nil)
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	events := make([]*hookstreamv1.Event, len(items))
	for i, item := range items {
		if err := s.validator.Validate(item); err != nil {
			return nil, s.rejectInvalid(ctx, in, err)
		}
		ts := item.GetTimestamp().AsTime().UTC().Format(time.RFC3339Nano)
		dataID := req.GetDelivery().GetEvents()[i].GetData().GetFields()["id"].GetStringValue()
		events[i] = in.event(item.GetEvent(), item.GetEvent()+"/"+dataID+"/"+ts, item.GetTimestamp())
		events[i].Payload = &hookstreamv1.Event_Mvmnt{Mvmnt: item}
	}
	receipts, err := s.append(ctx, events...)
	if err != nil {
		return nil, err
	}
	return &hookstreamv1.ReceiveMvmntDeliveryResponse{Receipts: receipts}, nil
}

// NotifyListener implements hookstreamv1.WebhookServiceServer.
func (s *Service) NotifyListener(ctx context.Context, req *hookstreamv1.NotifyListenerRequest) (*hookstreamv1.NotifyListenerResponse, error) {
	l, ok := s.listeners[strings.ToLower(req.GetListenerId())]
	if !ok {
		return nil, status.Error(codes.NotFound, "unknown listener")
	}
	in := s.start(ctx, hookstreamv1.Provider_PROVIDER_LISTENER, req.GetRaw(), req.GetBody())
	if d, ok := FromContext(ctx); ok && d.Raw != nil {
		req.DedupId = d.DedupID
	}
	in.keep(HeaderListenerID, req.GetListenerId())
	in.keep(HeaderDedupID, req.GetDedupId())
	if err := s.validate(ctx, in, req); err != nil {
		return nil, err
	}
	n := convert.ListenerNotification(req.GetListenerId(), req.GetBody(), l.DefaultType)
	key := req.GetDedupId()
	if key == "" {
		key = hash(in.raw)
	}
	e := in.event(n.GetEventType(), req.GetListenerId()+"/"+key, nil)
	e.Payload = &hookstreamv1.Event_Listener{Listener: n}
	if _, err := s.append(ctx, e); err != nil {
		return nil, err
	}
	return &hookstreamv1.NotifyListenerResponse{Message: "Event received successfully", Status: "RECEIVED"}, nil
}

// Keys of QuarantineEntry.headers that hookstream itself sets, beside the request headers the
// front door keeps: what a redrive needs to ingest the payload again.
const (
	// HeaderWebhookID is the Move API webhook id (the Svix message id).
	HeaderWebhookID = "webhook-id"
	// HeaderListenerID is the listener a notification was sent to.
	HeaderListenerID = "hookstream-listener-id"
	// HeaderDedupID is a listener notification's dedup id.
	HeaderDedupID = "hookstream-dedup-id"
)

// keep records a value a redrive needs with a quarantined payload.
func (in *incoming) keep(key, value string) {
	if value == "" {
		return
	}
	h := make(map[string]string, len(in.delivery.Headers)+1)
	for k, v := range in.delivery.Headers {
		h[k] = v
	}
	h[key] = value
	in.delivery.Headers = h
}

// incoming is one request on its way in.
type incoming struct {
	provider hookstreamv1.Provider
	raw      []byte
	delivery Delivery
}

func (s *Service) start(ctx context.Context, p hookstreamv1.Provider, raw []byte, payload proto.Message) incoming {
	d, _ := FromContext(ctx)
	if d.Raw != nil {
		raw = d.Raw
	}
	if len(raw) == 0 && payload != nil {
		raw, _ = convert.MarshalOptions.Marshal(payload)
	}
	if d.Source == "" {
		d.Source = "grpc"
	}
	if d.ReceivedAt.IsZero() {
		d.ReceivedAt = time.Now()
	}
	return incoming{provider: p, raw: raw, delivery: d}
}

// event fills an envelope; the caller sets the payload.
func (in incoming) event(typ, dedupKey string, occurred *timestamppb.Timestamp) *hookstreamv1.Event {
	return &hookstreamv1.Event{
		Id:         uuid.Must(uuid.NewV7()).String(),
		Provider:   in.provider,
		Type:       typ,
		Source:     in.delivery.Source,
		OccurredAt: occurred,
		ReceivedAt: timestamppb.New(in.delivery.ReceivedAt),
		DedupKey:   dedupKey,
		Raw:        in.raw,
		RequestId:  in.delivery.RequestID,
	}
}

func hash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// validate checks req against its protovalidate rules; a violation is quarantined and answered
// INVALID_ARGUMENT with the violations as details.
func (s *Service) validate(ctx context.Context, in incoming, req proto.Message) error {
	if err := s.validator.Validate(req); err != nil {
		return s.rejectInvalid(ctx, in, err)
	}
	return nil
}

func (s *Service) rejectInvalid(ctx context.Context, in incoming, err error) error {
	var verr *protovalidate.ValidationError
	if !errors.As(err, &verr) {
		s.logger.Error("validation did not run", "err", err)
		return status.Error(codes.Internal, "validation failed to run")
	}
	fvs := Violations(verr)
	s.quarantine(ctx, in, hookstreamv1.QuarantineEntry_REASON_INVALID, "schema violation", fvs)
	return InvalidArgument(verr)
}

// Violations lists a validation error's violations as FieldViolations.
func Violations(verr *protovalidate.ValidationError) []*hookstreamv1.FieldViolation {
	out := make([]*hookstreamv1.FieldViolation, 0, len(verr.Violations))
	for _, v := range verr.Violations {
		out = append(out, &hookstreamv1.FieldViolation{
			Field:   protovalidate.FieldPathString(v.Proto.GetField()),
			Rule:    v.Proto.GetRuleId(),
			Message: v.Proto.GetMessage(),
		})
	}
	return out
}

// InvalidArgument is the status of a payload that breaks its schema: INVALID_ARGUMENT with a
// google.rpc.BadRequest naming each violated field and rule, and protovalidate's Violations.
func InvalidArgument(verr *protovalidate.ValidationError) error {
	st := status.New(codes.InvalidArgument, "payload violates the schema")
	br := &errdetails.BadRequest{}
	for _, v := range Violations(verr) {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field:       v.GetField(),
			Description: v.GetRule() + ": " + v.GetMessage(),
			Reason:      v.GetRule(),
		})
	}
	if withDetails, err := st.WithDetails(br, verr.ToProto()); err == nil {
		st = withDetails
	}
	return st.Err()
}

// append stores events and answers with their receipts; UNAVAILABLE when the log cannot take
// them.
func (s *Service) append(ctx context.Context, events ...*hookstreamv1.Event) ([]*hookstreamv1.Receipt, error) {
	msgs := make([]*nats.Msg, len(events))
	for i, e := range events {
		data, err := proto.Marshal(e)
		if err != nil {
			return nil, status.Error(codes.Internal, "encode event")
		}
		m := nats.NewMsg(Subject(e.GetProvider(), e.GetType()))
		m.Header.Set(jetstream.MsgIDHeader, e.GetProvider().String()+":"+e.GetDedupKey())
		m.Header.Set(eventlog.IDHeader, e.GetId())
		m.Data = data
		msgs[i] = m
	}
	results, err := s.log.Events().Append(ctx, msgs...)
	if err != nil {
		return nil, status.Error(codes.Unavailable, "event log unavailable, retry later")
	}
	receipts := make([]*hookstreamv1.Receipt, len(events))
	for i, r := range results {
		if r.Err != nil {
			s.logger.Warn("append failed", "err", r.Err)
			return nil, status.Error(codes.Unavailable, "event log unavailable, retry later")
		}
		receipts[i] = &hookstreamv1.Receipt{EventId: events[i].GetId(), Sequence: r.Sequence, Duplicate: r.Duplicate}
	}
	return receipts, nil
}

// quarantine keeps a rejected authentic payload. Failing to do so is logged: the caller's answer
// (a 4xx) does not change, and the provider's copy is still the payload's source of truth.
func (s *Service) quarantine(ctx context.Context, in incoming, reason hookstreamv1.QuarantineEntry_Reason, detail string, fvs []*hookstreamv1.FieldViolation) {
	entry := &hookstreamv1.QuarantineEntry{
		Id:            uuid.Must(uuid.NewV7()).String(),
		Reason:        reason,
		Detail:        detail,
		Violations:    fvs,
		Provider:      in.provider,
		Source:        in.delivery.Source,
		Raw:           in.raw,
		Headers:       in.delivery.Headers,
		ReceivedAt:    timestamppb.New(in.delivery.ReceivedAt),
		QuarantinedAt: timestamppb.Now(),
		RequestId:     in.delivery.RequestID,
	}
	if err := Quarantine(ctx, s.log, entry); err != nil {
		s.logger.Error("quarantine failed", "err", err, "provider", in.provider.String())
	}
}

// Quarantine appends entry to the quarantine stream.
func Quarantine(ctx context.Context, log *eventlog.Log, entry *hookstreamv1.QuarantineEntry) error {
	data, err := proto.Marshal(entry)
	if err != nil {
		return err
	}
	m := nats.NewMsg(eventlog.QuarantineSubjectPrefix + "." + providerToken(entry.GetProvider()) + "." + ReasonToken(entry.GetReason()))
	m.Header.Set(eventlog.IDHeader, entry.GetId())
	m.Data = data
	res, err := log.Quarantine().Append(ctx, m)
	if err != nil {
		return err
	}
	return res[0].Err
}

// ReasonToken is a quarantine reason's subject token: "malformed", "invalid", "dead_letter".
func ReasonToken(r hookstreamv1.QuarantineEntry_Reason) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "REASON_"))
}

// Restore stores again an event that was stored before (a redriven dead letter), as a new event
// with its own id and the given dedup key, and returns its receipt.
func (s *Service) Restore(ctx context.Context, e *hookstreamv1.Event, dedupKey string) ([]*hookstreamv1.Receipt, error) {
	if e == nil || e.GetPayload() == nil {
		return nil, status.Error(codes.FailedPrecondition, "entry holds no event")
	}
	again := proto.Clone(e).(*hookstreamv1.Event)
	again.Id = uuid.Must(uuid.NewV7()).String()
	again.DedupKey = dedupKey
	again.Sequence = 0
	return s.append(ctx, again)
}

// providerToken is a provider's subject token: "moveapi", "movement", "mvmnt", "listener".
func providerToken(p hookstreamv1.Provider) string {
	return strings.ToLower(strings.TrimPrefix(p.String(), "PROVIDER_"))
}

// Subject is the event log subject of an event: hookstream.events.<provider>.<type tokens>. The
// type's "."-separated tokens are kept; characters NATS subjects cannot hold (whitespace, "*",
// ">") become "_", an empty token becomes "_", and a type of more than 16 tokens or 256 bytes is
// cut there, so every type has a subject and type patterns match token by token.
func Subject(p hookstreamv1.Provider, typ string) string {
	var b strings.Builder
	b.WriteString(eventlog.EventsSubjectPrefix)
	b.WriteByte('.')
	b.WriteString(providerToken(p))
	tokens := strings.Split(typ, ".")
	if len(tokens) > 16 {
		tokens = tokens[:16]
	}
	n := 0
	for _, t := range tokens {
		b.WriteByte('.')
		if t == "" {
			b.WriteByte('_')
			continue
		}
		for _, r := range t {
			if n >= 256 {
				break
			}
			switch {
			case r == '*' || r == '>' || r <= ' ' || r == 0x7f || r == '\uFFFD':
				b.WriteByte('_')
			default:
				b.WriteRune(r)
			}
			n++
		}
	}
	return b.String()
}
