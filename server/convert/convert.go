// Package convert turns providers' JSON into hookstream's typed messages: the protojson options
// the HTTP gateway decodes request bodies with, and the steps that give a payload its type string
// and its typed form (an MVMNT item's data typed by entity, a listener body's event type).
//
// Every function here is pure and safe for concurrent use.
package convert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	listenerv1 "github.com/hookstream/hookstream/gen/hookstream/listener/v1"
	moveapiv1 "github.com/hookstream/hookstream/gen/hookstream/moveapi/v1"
	movementv1 "github.com/hookstream/hookstream/gen/hookstream/movement/v1"
	mvmntv1 "github.com/hookstream/hookstream/gen/hookstream/mvmnt/v1"
)

// ErrMalformed is wrapped by every error for JSON that does not have the shape of the message it
// is converted into.
var ErrMalformed = errors.New("malformed payload")

// UnmarshalOptions is how provider JSON is decoded everywhere (gateway, redrive, tests). Unknown
// fields are discarded rather than rejected: providers add fields without notice, and the exact
// raw JSON is kept beside the typed message, so nothing is lost.
var UnmarshalOptions = protojson.UnmarshalOptions{DiscardUnknown: true}

// MarshalOptions is how hookstream writes messages as JSON (gateway responses, raw JSON of events
// delivered over gRPC without raw bytes). Proto field names keep the providers' snake_case
// spelling where they use it.
var MarshalOptions = protojson.MarshalOptions{UseProtoNames: true}

// Marshaler returns the grpc-gateway marshaler for application/json, with UnmarshalOptions and
// MarshalOptions. The gateway decodes request bodies with it, so tests decode through it too.
// Its output is compact JSON: protojson varies its whitespace on purpose, and a provider's
// contract may fix the exact answer (the listener's
// {"message":"Event received successfully","status":"RECEIVED"}). A server stream (Tail) is sent
// as StreamContentType: one such JSON object per line.
func Marshaler() runtime.Marshaler {
	return compactJSONPb{&runtime.JSONPb{MarshalOptions: MarshalOptions, UnmarshalOptions: UnmarshalOptions}}
}

type compactJSONPb struct{ *runtime.JSONPb }

// StreamContentType is the media type of the gateway's server streams: newline-delimited JSON,
// one {"result": <message>} (or a last {"error": <status>}) per line, as the OpenAPI document
// says.
const StreamContentType = "application/x-ndjson"

// StreamContentType implements runtime.StreamContentType.
func (compactJSONPb) StreamContentType(any) string { return StreamContentType }

func (m compactJSONPb) Marshal(v any) ([]byte, error) {
	b, err := m.JSONPb.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Grow(len(b))
	if err := json.Compact(&out, b); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// Unmarshal decodes one provider JSON payload into m with UnmarshalOptions. Errors wrap
// ErrMalformed.
func Unmarshal(raw []byte, m proto.Message) error {
	if err := UnmarshalOptions.Unmarshal(raw, m); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

// MoveAPIType returns the event type string of a Move API webhook: its event_name.
func MoveAPIType(w *moveapiv1.Webhook) string { return w.GetEventName() }

// MovementType returns the event type string of a Movement webhook: "<topic>.<event>", e.g.
// "call.finished".
func MovementType(w *movementv1.Webhook) string { return w.GetTopic() + "." + w.GetEvent() }

// MovementOccurredAt returns when a Movement event happened: the call's began_at, the text
// message's or email's sent_at; nil for subscriptions and unknown topics.
func MovementOccurredAt(w *movementv1.Webhook) *timestamppb.Timestamp {
	switch o := w.GetObject().(type) {
	case *movementv1.Webhook_Call:
		return o.Call.GetBeganAt()
	case *movementv1.Webhook_TextMessage:
		return o.TextMessage.GetSentAt()
	case *movementv1.Webhook_Email:
		return o.Email.GetSentAt()
	}
	return nil
}

// MovementObjectID returns the id of the object a Movement event is about (call, text message,
// email or subscription), and false for an unknown topic.
func MovementObjectID(w *movementv1.Webhook) (int64, bool) {
	switch o := w.GetObject().(type) {
	case *movementv1.Webhook_Call:
		return o.Call.GetId(), true
	case *movementv1.Webhook_TextMessage:
		return o.TextMessage.GetId(), true
	case *movementv1.Webhook_Email:
		return o.Email.GetId(), true
	case *movementv1.Webhook_Subscription:
		return o.Subscription.GetId(), true
	}
	return 0, false
}

// ListenerNotification builds the typed notification of a listener body. The event type is the
// body's "event_type" when it is a non-empty string, else defaultType.
func ListenerNotification(listenerID string, body *structpb.Struct, defaultType string) *listenerv1.Notification {
	t := defaultType
	if v, ok := body.GetFields()["event_type"]; ok {
		if s, ok := v.GetKind().(*structpb.Value_StringValue); ok && s.StringValue != "" {
			t = s.StringValue
		}
	}
	return &listenerv1.Notification{ListenerId: listenerID, EventType: t, Body: body}
}

// MvmntEventType returns the enum of an MVMNT event name, EVENT_TYPE_UNSPECIFIED when hookstream
// does not know it.
func MvmntEventType(name string) mvmntv1.EventType {
	return mvmntv1.EventType(mvmntv1.EventType_value["EVENT_TYPE_"+name])
}

// MvmntEvents splits a delivery into the events hookstream stores, one per item, each with its
// data typed by the entity it describes (see mvmnt.v1.Event.data). Errors wrap ErrMalformed and
// name the item, when an item's data does not have the published shape of its entity.
func MvmntEvents(d *mvmntv1.Delivery) ([]*mvmntv1.Event, error) {
	items := d.GetEvents()
	out := make([]*mvmntv1.Event, len(items))
	for i, item := range items {
		e, err := MvmntEvent(item, d.GetSentAt(), i, len(items))
		if err != nil {
			return nil, fmt.Errorf("events[%d]: %w", i, err)
		}
		out[i] = e
	}
	return out, nil
}

// MvmntEvent builds the event hookstream stores for item, the index-th of count items of a
// delivery sent at sentAt, with its data typed by the entity it describes (see
// mvmnt.v1.Event.data). Errors wrap ErrMalformed when the item's data does not have the
// published shape of its entity.
func MvmntEvent(item *mvmntv1.DeliveryEvent, sentAt *timestamppb.Timestamp, index, count int) (*mvmntv1.Event, error) {
	return mvmntEvent(item, sentAt, index, count, nil)
}

// MvmntItemEvent is MvmntEvent for an item decoded from raw, its exact bytes (the element of a
// delivery's "events" array as received). A typed entity is decoded straight from the bytes of
// raw's "data" rather than from item's Struct turned back into JSON: one decode instead of a
// marshal and a decode, and integers are read exactly (the Struct holds doubles). The stored
// event is otherwise the one MvmntEvent builds; when the data's bytes cannot be told for certain
// (a key written with escapes, data null), it is built from item's Struct, as MvmntEvent does.
// raw must be what item was decoded from, with UnmarshalOptions. Errors wrap ErrMalformed.
func MvmntItemEvent(raw []byte, item *mvmntv1.DeliveryEvent, sentAt *timestamppb.Timestamp, index, count int) (*mvmntv1.Event, error) {
	return mvmntEvent(item, sentAt, index, count, itemData(raw))
}

// mvmntEvent builds item's event, its data typed from data (the exact bytes of its data object)
// when not nil, else from its Struct.
func mvmntEvent(item *mvmntv1.DeliveryEvent, sentAt *timestamppb.Timestamp, index, count int, data []byte) (*mvmntv1.Event, error) {
	e := &mvmntv1.Event{
		Event:     item.GetEvent(),
		EventType: MvmntEventType(item.GetEvent()),
		Timestamp: item.GetTimestamp(),
		SentAt:    sentAt,
		Index:     uint32(index),
		Count:     uint32(count),
		Diff:      item.GetDiff(),
	}
	if err := typeMvmntData(e, item.GetData(), data); err != nil {
		return nil, fmt.Errorf("%w: data: %w", ErrMalformed, err)
	}
	return e, nil
}

// SplitMvmnt reads the envelope of an MVMNT delivery body: its "sentAt" (nil when absent or
// null) and the exact bytes of each element of its "events" array, in order, as subslices of raw
// (nil when "events" is absent or null). The items themselves are not decoded, so that one
// malformed item does not make the others unreadable. Like protojson, it accepts the JSON and
// the proto names of the fields ("sentAt", "sent_at"), ignores unknown fields and refuses a field
// given twice. Errors wrap ErrMalformed: the body is not one JSON object, "events" is not an
// array, or "sentAt" is not a timestamp.
func SplitMvmnt(raw []byte) (*timestamppb.Timestamp, [][]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, fmt.Errorf("%w: the delivery is not a JSON object", ErrMalformed)
	}
	var sentAt *timestamppb.Timestamp
	var items [][]byte
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		name := mvmntEnvelopeField(tok.(string))
		if name != "" && seen[name] {
			return nil, nil, fmt.Errorf("%w: %q is given twice", ErrMalformed, name)
		}
		seen[name] = true
		switch name {
		case "sentAt":
			if sentAt, err = decodeSentAt(dec); err != nil {
				return nil, nil, err
			}
		case "events":
			if items, err = splitItems(dec, raw); err != nil {
				return nil, nil, err
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, fmt.Errorf("%w: data after the delivery object", ErrMalformed)
	}
	return sentAt, items, nil
}

// mvmntEnvelopeField returns the envelope field a JSON key names, "" for another key.
func mvmntEnvelopeField(key string) string {
	switch key {
	case "sentAt", "sent_at":
		return "sentAt"
	case "events":
		return "events"
	}
	return ""
}

func decodeSentAt(dec *json.Decoder) (*timestamppb.Timestamp, error) {
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if string(v) == "null" {
		return nil, nil
	}
	ts := &timestamppb.Timestamp{}
	if err := protojson.Unmarshal(v, ts); err != nil {
		return nil, fmt.Errorf("%w: sentAt: %w", ErrMalformed, err)
	}
	return ts, nil
}

// splitItems reads the "events" array the decoder is at and returns its elements' bytes.
func splitItems(dec *json.Decoder, raw []byte) ([][]byte, error) {
	tok, err := dec.Token()
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	case tok == nil: // null: no events
		return nil, nil
	case tok != json.Delim('['):
		return nil, fmt.Errorf("%w: events is not an array", ErrMalformed)
	}
	var items [][]byte
	for dec.More() {
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%w: events[%d]: %w", ErrMalformed, len(items), err)
		}
		end := int(dec.InputOffset())
		start := end - len(v)
		if start < 0 || !bytes.Equal(raw[start:end], v) {
			// Decoder positions are documented to be the end of the last value; never trust
			// them blindly with the bytes an event is stored with.
			return nil, fmt.Errorf("%w: events[%d]: item bytes not found in the body", ErrMalformed, len(items))
		}
		items = append(items, raw[start:end:end])
	}
	if _, err := dec.Token(); err != nil { // the closing bracket
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return items, nil
}

// mvmntData maps every known MVMNT event type to the field of mvmnt.v1.Event's data oneof that
// types its data ("customer", "deleted", "other", …). It is derived from the names of the
// EventType enum by the rules documented on that oneof, so a type added to the enum is typed
// without another table to keep in step.
var mvmntData = func() map[mvmntv1.EventType]protoreflect.Name {
	m := make(map[mvmntv1.EventType]protoreflect.Name)
	for num, full := range mvmntv1.EventType_name {
		m[mvmntv1.EventType(num)] = dataField(strings.TrimPrefix(full, "EVENT_TYPE_"))
	}
	return m
}()

func dataField(name string) protoreflect.Name {
	group, action, _ := strings.Cut(name, "_")
	lifecycle := strings.HasSuffix(name, "_CREATED") || strings.HasSuffix(name, "_UPDATED")
	switch {
	case strings.HasSuffix(name, "_DELETED"):
		return "deleted"
	case name == "SHIPMENT_DELIVERED":
		return "shipment_delivered"
	case strings.Contains(name, "_CONTACT_") && lifecycle:
		return "contact"
	case strings.Contains(name, "_PAYMENT_METHOD_") && lifecycle:
		return "payment_method"
	case strings.HasPrefix(name, "CARRIER_FACTOR_") && lifecycle:
		return "carrier_factor"
	case action == "CREATED" || action == "UPDATED" || (group == "CARRIER" && (action == "ACTIVATED" || action == "DEACTIVATED")):
		switch group {
		case "CUSTOMER", "COMPANY", "CARRIER", "VENDOR", "LOCATION":
			return protoreflect.Name(strings.ToLower(group))
		}
	}
	return "other"
}

// typeMvmntData sets e.data from the item's JSON data: from raw, the exact bytes of the data
// object, when not nil, else from data marshalled back to JSON.
func typeMvmntData(e *mvmntv1.Event, data *structpb.Struct, raw []byte) error {
	field, ok := mvmntData[e.GetEventType()]
	if !ok || e.GetEventType() == mvmntv1.EventType_EVENT_TYPE_UNSPECIFIED || field == "other" {
		e.Data = &mvmntv1.Event_Other{Other: untyped(data)}
		return nil
	}
	if raw == nil {
		var err error
		if raw, err = protojson.Marshal(data); err != nil {
			return err
		}
	}
	msg := e.ProtoReflect()
	fd := msg.Descriptor().Fields().ByName(field)
	v := msg.NewField(fd)
	if err := UnmarshalOptions.Unmarshal(raw, v.Message().Interface()); err != nil {
		return err
	}
	msg.Set(fd, v)
	return nil
}

// untyped keeps data whose shape MVMNT does not publish, with the common fields typed.
func untyped(data *structpb.Struct) *mvmntv1.UntypedData {
	f := data.GetFields()
	u := &mvmntv1.UntypedData{
		Id:         f["id"].GetStringValue(),
		FriendlyId: f["friendlyId"].GetStringValue(),
		Fields:     data,
	}
	if k, ok := f["key"].GetKind().(*structpb.Value_StringValue); ok {
		u.Key = &k.StringValue
	}
	return u
}
