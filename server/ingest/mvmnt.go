package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	mvmntv1 "github.com/hookstream/hookstream/gen/hookstream/mvmnt/v1"
	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/convert"
	"github.com/hookstream/hookstream/server/validate"
)

// receiptViolations is the most violations an item's receipt lists (its entry keeps up to
// validate.MaxViolations): a delivery can hold thousands of items.
const receiptViolations = 10

// mvmntItem is one element of a delivery's "events" array.
type mvmntItem struct {
	// raw is the item's exact bytes: what its event or quarantine entry keeps.
	raw []byte
	// wire is the decoded item; nil when it does not decode (malformed says why).
	wire      *mvmntv1.DeliveryEvent
	malformed string
	// decoded is true when wire was decoded from raw (a verified body), so its data can be
	// typed straight from raw; false for a gRPC producer's item, typed from wire alone.
	decoded bool
}

// ReceiveMvmntDelivery implements hookstreamv1.WebhookServiceServer. Each item of the delivery is
// handled on its own: a valid item is stored as an event that keeps its own bytes; an item that
// does not decode or breaks the rules is quarantined on its own; the answer has one receipt per
// item, in order. Only a delivery whose envelope is unusable fails whole, with INVALID_ARGUMENT
// (and is quarantined whole).
func (s *Service) ReceiveMvmntDelivery(ctx context.Context, req *hookstreamv1.ReceiveMvmntDeliveryRequest) (*hookstreamv1.ReceiveMvmntDeliveryResponse, error) {
	began := time.Now()
	resp, err := s.receiveMvmnt(ctx, req)
	s.finish(ctx, hookstreamv1.Provider_PROVIDER_MVMNT, began, resp.GetReceipts(), err)
	return resp, err
}

func (s *Service) receiveMvmnt(ctx context.Context, req *hookstreamv1.ReceiveMvmntDeliveryRequest) (*hookstreamv1.ReceiveMvmntDeliveryResponse, error) {
	in, err := s.begin(ctx, hookstreamv1.Provider_PROVIDER_MVMNT, req.GetRaw(), req.GetDelivery())
	if err != nil {
		return nil, err
	}
	_, span := s.tracer.Start(ctx, "convert")
	d, items, rj, err := in.mvmntItems(req)
	span.End()
	switch {
	case err != nil:
		return nil, err
	case rj != nil:
		return nil, s.rejectOne(ctx, in, rj)
	}
	// One validation of the whole request; a violation inside events[i] is item i's alone.
	var perItem map[int][]*validate.Violation
	_, span = s.tracer.Start(ctx, "validate")
	err = validate.Check(&hookstreamv1.ReceiveMvmntDeliveryRequest{Delivery: d})
	span.End()
	var verr *validate.ValidationError
	switch {
	case errors.As(err, &verr):
		var envelope []*validate.Violation
		envelope, perItem = byItem(verr.Violations)
		if len(envelope) > 0 {
			return nil, s.rejectOne(ctx, in, in.invalid(envelope))
		}
	case err != nil:
		s.logger.Error("validation did not run", "err", err)
		return nil, status.Error(codes.Internal, "internal error")
	}
	parts := make([]part, len(items))
	for i, it := range items {
		if parts[i], err = in.mvmntPart(d, i, it, perItem[i]); err != nil {
			s.logger.Error("validation did not run", "err", err)
			return nil, status.Error(codes.Internal, "internal error")
		}
	}
	receipts, err := s.store(ctx, in, parts)
	if err != nil {
		return nil, err
	}
	return &hookstreamv1.ReceiveMvmntDeliveryResponse{Receipts: receipts}, nil
}

// mvmntItems returns the delivery and its items: split from the verified body (an item that
// does not decode is kept as bytes, with a placeholder in the delivery), or those of a gRPC
// producer's typed delivery, with the bytes of its raw JSON when it sent them. A body that is not
// a delivery at all is a rejection; a producer's raw bytes that do not match its delivery are an
// error.
func (in incoming) mvmntItems(req *hookstreamv1.ReceiveMvmntDeliveryRequest) (*mvmntv1.Delivery, []mvmntItem, *rejection, error) {
	if in.decode {
		sentAt, raws, err := convert.SplitMvmnt(in.d.Raw)
		if err != nil {
			return nil, nil, in.malformed(err.Error()), nil
		}
		d := &mvmntv1.Delivery{SentAt: sentAt, Events: make([]*mvmntv1.DeliveryEvent, len(raws))}
		items := make([]mvmntItem, len(raws))
		for i, raw := range raws {
			items[i].raw = raw
			wire := &mvmntv1.DeliveryEvent{}
			if err := convert.Unmarshal(raw, wire); err != nil {
				items[i].malformed = err.Error()
				d.Events[i] = &mvmntv1.DeliveryEvent{} // its violations are not reported: it is malformed
				continue
			}
			items[i].wire, items[i].decoded, d.Events[i] = wire, true, wire
		}
		return d, items, nil, nil
	}
	d := req.GetDelivery()
	var raws [][]byte
	if len(req.GetRaw()) > 0 {
		var err error
		if _, raws, err = convert.SplitMvmnt(req.GetRaw()); err != nil || len(raws) != len(d.GetEvents()) {
			return nil, nil, nil, status.Error(codes.InvalidArgument, "raw is not the JSON of delivery: its events array must have one item per event")
		}
	}
	items := make([]mvmntItem, len(d.GetEvents()))
	for i, wire := range d.GetEvents() {
		items[i].wire = wire
		if raws != nil {
			items[i].raw = raws[i]
		} else {
			items[i].raw, _ = convert.MarshalOptions.Marshal(wire)
		}
	}
	return d, items, nil, nil
}

// byItem splits the violations of a ReceiveMvmntDeliveryRequest into those of the envelope and
// those inside each item, by item index.
func byItem(vs []*validate.Violation) (envelope []*validate.Violation, items map[int][]*validate.Violation) {
	items = map[int][]*validate.Violation{}
	for _, v := range vs {
		el := v.Proto.GetField().GetElements()
		if len(el) >= 2 && el[0].GetFieldName() == "delivery" && el[1].GetFieldName() == "events" {
			if index, ok := el[1].GetSubscript().(*validatepb.FieldPathElement_Index); ok {
				i := int(index.Index)
				items[i] = append(items[i], v)
				continue
			}
		}
		envelope = append(envelope, v)
	}
	return envelope, items
}

// mvmntPart turns item i into the event to store, or the rejection to quarantine.
func (in incoming) mvmntPart(d *mvmntv1.Delivery, i int, it mvmntItem, vs []*validate.Violation) (part, error) {
	at := fmt.Sprintf("events[%d]", i)
	switch {
	case it.wire == nil:
		return part{reject: in.itemRejection(d, i, it.raw, hookstreamv1.QuarantineEntry_REASON_MALFORMED, it.malformed,
			[]*hookstreamv1.FieldViolation{{Field: at, Rule: "malformed", Message: it.malformed}})}, nil
	case len(vs) > 0:
		fvs := validate.FieldViolations(vs)
		for _, fv := range fvs {
			fv.Field = strings.TrimPrefix(fv.Field, "delivery.")
		}
		return part{reject: in.itemRejection(d, i, it.raw, hookstreamv1.QuarantineEntry_REASON_INVALID, "schema violation", fvs)}, nil
	}
	var e *mvmntv1.Event
	var err error
	if it.decoded {
		e, err = convert.MvmntItemEvent(it.raw, it.wire, d.GetSentAt(), i, len(d.GetEvents()))
	} else {
		e, err = convert.MvmntEvent(it.wire, d.GetSentAt(), i, len(d.GetEvents()))
	}
	if err != nil {
		return part{reject: in.itemRejection(d, i, it.raw, hookstreamv1.QuarantineEntry_REASON_MALFORMED, err.Error(),
			[]*hookstreamv1.FieldViolation{{Field: at + ".data", Rule: "malformed", Message: err.Error()}})}, nil
	}
	err = validate.Check(e)
	var verr *validate.ValidationError
	switch {
	case errors.As(err, &verr):
		fvs := validate.FieldViolations(verr.Violations)
		for _, fv := range fvs {
			fv.Field = at + "." + fv.Field
		}
		return part{reject: in.itemRejection(d, i, it.raw, hookstreamv1.QuarantineEntry_REASON_INVALID, "schema violation", fvs)}, nil
	case err != nil:
		return part{}, err
	}
	ev := in.event(e.GetEvent(), mvmntKey(it.wire, it.raw), e.GetTimestamp(), it.raw)
	ev.Payload = &hookstreamv1.Event_Mvmnt{Mvmnt: e}
	return part{event: ev}, nil
}

// itemRejection quarantines item i of d on its own.
func (in incoming) itemRejection(d *mvmntv1.Delivery, i int, raw []byte, reason hookstreamv1.QuarantineEntry_Reason, detail string, fvs []*hookstreamv1.FieldViolation) *rejection {
	index := uint32(i)
	return &rejection{reason: reason, detail: detail, violations: fvs, raw: raw, item: &index, sentAt: d.GetSentAt()}
}

// mvmntItemDelivery is the body of a delivery of one item: how a quarantined item is ingested
// again, its bytes unchanged.
func mvmntItemDelivery(sentAt *timestamppb.Timestamp, item []byte) []byte {
	b := []byte(`{"sentAt":`)
	if sentAt != nil {
		ts, _ := protojson.Marshal(sentAt)
		b = append(b, ts...)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"events":[`...)
	b = append(b, item...)
	return append(b, "]}"...)
}
