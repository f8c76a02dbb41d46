package ingest

import (
	"context"
	"errors"

	"github.com/google/uuid"
	otelcodes "go.opentelemetry.io/otel/codes"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/eventlog"
	"github.com/hookstream/hookstream/server/validate"
)

// part is one event of a request on its way to the log: an event to store, or a rejected
// payload to quarantine.
type part struct {
	event  *hookstreamv1.Event
	reject *rejection
}

// rejection is an authentic payload hookstream cannot accept: the whole body of a request, or
// one item of an MVMNT delivery. It is quarantined, and answered INVALID_ARGUMENT on a
// single-event route or in its receipt.
type rejection struct {
	reason hookstreamv1.QuarantineEntry_Reason
	detail string
	// violations are the receipt's and the entry's, at most validate.MaxViolations.
	violations []*hookstreamv1.FieldViolation
	// answer is the INVALID_ARGUMENT a single-event route answers with.
	answer error
	// raw is the payload kept: the body, or the item's bytes.
	raw []byte
	// item and sentAt locate an MVMNT item quarantined on its own.
	item   *uint32
	sentAt *timestamppb.Timestamp
}

// malformed rejects the whole body: it is not JSON of the provider's shape.
func (in incoming) malformed(detail string) *rejection {
	st := status.New(codes.InvalidArgument, "the body does not have the provider's JSON shape")
	br := &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "body", Description: detail, Reason: "MALFORMED"}}}
	if d, err := st.WithDetails(br); err == nil {
		st = d
	}
	return &rejection{
		reason:     hookstreamv1.QuarantineEntry_REASON_MALFORMED,
		detail:     detail,
		violations: []*hookstreamv1.FieldViolation{{Field: "body", Rule: "malformed", Message: detail}},
		answer:     st.Err(),
		raw:        in.d.Raw,
	}
}

// invalid rejects the whole body: it breaks the rules vs.
func (in incoming) invalid(vs []*validate.Violation) *rejection {
	return &rejection{
		reason:     hookstreamv1.QuarantineEntry_REASON_INVALID,
		detail:     "schema violation",
		violations: validate.FieldViolations(vs),
		answer:     validate.Status(vs),
		raw:        in.d.Raw,
	}
}

// accept validates req; a request that breaks its rules is quarantined and answered
// INVALID_ARGUMENT with the violations.
func (s *Service) accept(ctx context.Context, in incoming, req proto.Message) error {
	_, span := s.tracer.Start(ctx, "validate")
	err := validate.Check(req)
	if err != nil {
		span.SetStatus(otelcodes.Error, "invalid")
	}
	span.End()
	var verr *validate.ValidationError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &verr):
		return s.rejectOne(ctx, in, in.invalid(verr.Violations))
	}
	s.logger.Error("validation did not run", "err", err)
	return status.Error(codes.Internal, "internal error")
}

// rejectOne quarantines the rejected body of a single-event request and returns its answer; 503
// when the quarantine cannot take it, so that the provider retries and nothing is lost.
func (s *Service) rejectOne(ctx context.Context, in incoming, rj *rejection) error {
	if _, err := s.store(ctx, in, []part{{reject: rj}}); err != nil {
		return err
	}
	return rj.answer
}

// storeOne stores the one event of a single-event request.
func (s *Service) storeOne(ctx context.Context, in incoming, e *hookstreamv1.Event) (*hookstreamv1.Receipt, error) {
	receipts, err := s.store(ctx, in, []part{{event: e}})
	if err != nil {
		return nil, err
	}
	if receipts[0].GetOutcome() == hookstreamv1.Receipt_OUTCOME_QUARANTINED {
		return nil, status.Error(codes.InvalidArgument, "the event is too large to store; it is kept in the quarantine")
	}
	return receipts[0], nil
}

// store appends the events of parts, then quarantines the rejected ones (and any event the log
// found too large), and returns one receipt per part, in order. Any append that fails fails the
// whole request with UNAVAILABLE: a retry stores what is missing, and what is there already is
// answered as a duplicate.
func (s *Service) store(ctx context.Context, in incoming, parts []part) ([]*hookstreamv1.Receipt, error) {
	ctx, span := s.tracer.Start(ctx, "append")
	defer span.End()
	receipts, err := s.storeParts(ctx, in, parts)
	if err != nil {
		span.SetStatus(otelcodes.Error, status.Code(err).String())
	}
	return receipts, err
}

// storeParts is store, inside its span.
func (s *Service) storeParts(ctx context.Context, in incoming, parts []part) ([]*hookstreamv1.Receipt, error) {
	receipts := make([]*hookstreamv1.Receipt, len(parts))
	var events []*hookstreamv1.Event
	var at []int
	for i, p := range parts {
		if p.event != nil {
			events = append(events, p.event)
			at = append(at, i)
		}
	}
	if len(events) > 0 {
		results, err := s.log.AppendEvents(ctx, events...)
		if err != nil {
			return nil, s.appendError(err)
		}
		for j, r := range results {
			e := events[j]
			switch {
			case errors.Is(r.Err, eventlog.ErrTooLarge):
				// The size budget says this cannot happen to a body within the limit.
				s.logger.Error("event larger than the event log's size budget: quarantined", "provider", e.GetProvider().String(), "raw_bytes", len(e.GetRaw()), "err", r.Err)
				parts[at[j]] = part{reject: &rejection{reason: hookstreamv1.QuarantineEntry_REASON_INVALID, detail: "the event is larger than the event log's size budget", raw: e.GetRaw()}}
			case r.Err != nil:
				return nil, s.appendError(r.Err)
			default:
				receipts[at[j]] = storedReceipt(e.GetId(), r)
			}
		}
	}
	if err := s.quarantine(ctx, in, parts, receipts); err != nil {
		return nil, err
	}
	return receipts, nil
}

func storedReceipt(id string, r eventlog.Result) *hookstreamv1.Receipt {
	outcome := hookstreamv1.Receipt_OUTCOME_STORED
	if r.Duplicate {
		outcome = hookstreamv1.Receipt_OUTCOME_DUPLICATE
	}
	return &hookstreamv1.Receipt{EventId: id, Sequence: r.Sequence, Duplicate: r.Duplicate, Outcome: outcome}
}

// quarantine stores the rejected parts and fills their receipts. A retry of the same bytes is
// not quarantined twice: its receipt names the entry made the first time.
func (s *Service) quarantine(ctx context.Context, in incoming, parts []part, receipts []*hookstreamv1.Receipt) error {
	var entries []*hookstreamv1.QuarantineEntry
	var at []int
	for i, p := range parts {
		if p.reject != nil {
			entries = append(entries, in.entry(p.reject))
			at = append(at, i)
		}
	}
	if len(entries) == 0 {
		return nil
	}
	if in.d.Redriving != "" {
		for j, e := range entries {
			receipts[at[j]] = quarantinedReceipt(in.d.Redriving, e)
		}
		return nil
	}
	results, err := s.log.Quarantine(ctx, entries...)
	if err != nil {
		return s.appendError(err)
	}
	for j, r := range results {
		if r.Err != nil {
			s.logger.Error("quarantine failed", "provider", in.d.Provider.String(), "request_id", in.d.RequestID, "err", r.Err)
			return s.appendError(r.Err)
		}
		id := entries[j].GetId()
		if r.Duplicate {
			if id, err = s.log.EntryID(ctx, r.Sequence); err != nil {
				return s.appendError(err)
			}
		}
		receipts[at[j]] = quarantinedReceipt(id, entries[j])
	}
	return nil
}

// quarantinedReceipt is the receipt of a rejected part kept in the quarantine entry id.
func quarantinedReceipt(id string, e *hookstreamv1.QuarantineEntry) *hookstreamv1.Receipt {
	rec := &hookstreamv1.Receipt{Outcome: hookstreamv1.Receipt_OUTCOME_QUARANTINED, QuarantineEntryId: id}
	vs := e.GetViolations()
	for _, v := range vs[:min(len(vs), receiptViolations)] {
		rec.Violations = append(rec.Violations, &hookstreamv1.Receipt_Violation{Field: v.GetField(), Rule: v.GetRule(), Message: v.GetMessage()})
	}
	return rec
}

// appendError is the answer to an append the log did not take: each cause its own code, with a
// public message (the cause is logged, never sent).
func (s *Service) appendError(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "the request was canceled")
	case errors.Is(err, eventlog.ErrClosed):
		return status.Error(codes.Unavailable, "hookstream is shutting down, retry later")
	case errors.Is(err, eventlog.ErrUnavailable), errors.Is(err, eventlog.ErrNotFound):
		// Before DeadlineExceeded: a commit that timed out (a cluster electing a leader) wraps
		// it, and is the log's failure, not the request's (503, not 504).
		s.logger.Warn("append failed", "err", err)
		return status.Error(codes.Unavailable, "event log unavailable, retry later")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "the request timed out before the event log answered")
	}
	s.logger.Error("append failed", "err", err)
	return status.Error(codes.Internal, "internal error")
}

// Keys of QuarantineEntry.headers that hookstream itself sets, beside the request headers the
// front door keeps: what Redelivery needs to ingest the payload again.
const (
	// HeaderWebhookID is the Move API webhook id (the Svix message id).
	HeaderWebhookID = "webhook-id"
	// HeaderListenerID is the listener a notification was sent to.
	HeaderListenerID = "hookstream-listener-id"
	// HeaderDedupID is a listener notification's dedup id.
	HeaderDedupID = "hookstream-dedup-id"
)

// entry is the quarantine entry of a rejection.
func (in incoming) entry(rj *rejection) *hookstreamv1.QuarantineEntry {
	h := make(map[string]string, len(in.d.Headers)+3)
	for k, v := range in.d.Headers {
		h[k] = v
	}
	for k, v := range map[string]string{HeaderWebhookID: in.d.WebhookID, HeaderListenerID: in.d.ListenerID, HeaderDedupID: in.d.DedupID} {
		if v != "" {
			h[k] = v
		}
	}
	kind := "body:"
	if rj.item != nil {
		kind = "item:"
	}
	return &hookstreamv1.QuarantineEntry{
		Id:             uuid.Must(uuid.NewV7()).String(),
		Reason:         rj.reason,
		Detail:         rj.detail,
		Violations:     rj.violations,
		Provider:       in.d.Provider,
		Source:         in.d.Source,
		Raw:            rj.raw,
		Headers:        h,
		ReceivedAt:     timestamppb.New(in.d.ReceivedAt),
		QuarantinedAt:  timestamppb.Now(),
		RequestId:      in.d.RequestID,
		DedupKey:       kind + in.d.Source + ":" + hashKey(rj.raw),
		ItemIndex:      rj.item,
		DeliverySentAt: rj.sentAt,
	}
}

// Redelivery returns the delivery a quarantined payload came in as, for Ingest: the entry's raw
// bytes and the headers hookstream kept with them. An MVMNT item quarantined on its own comes
// back as a delivery of that one item, with its delivery's sentAt and its own exact bytes.
func Redelivery(e *hookstreamv1.QuarantineEntry) Delivery {
	h := e.GetHeaders()
	d := Delivery{
		Provider:   e.GetProvider(),
		Raw:        e.GetRaw(),
		Source:     e.GetSource(),
		RequestID:  e.GetRequestId(),
		Headers:    h,
		ReceivedAt: e.GetReceivedAt().AsTime(),
		WebhookID:  h[HeaderWebhookID],
		ListenerID: h[HeaderListenerID],
		DedupID:    h[HeaderDedupID],
		Redriving:  e.GetId(),
	}
	if e.ItemIndex != nil {
		d.Raw = mvmntItemDelivery(e.GetDeliverySentAt(), e.GetRaw())
	}
	return d
}
