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
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
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
// {"message":"Event received successfully","status":"RECEIVED"}).
func Marshaler() runtime.Marshaler {
	return compactJSONPb{&runtime.JSONPb{MarshalOptions: MarshalOptions, UnmarshalOptions: UnmarshalOptions}}
}

type compactJSONPb struct{ *runtime.JSONPb }

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
		e := &mvmntv1.Event{
			Event:     item.GetEvent(),
			EventType: MvmntEventType(item.GetEvent()),
			Timestamp: item.GetTimestamp(),
			SentAt:    d.GetSentAt(),
			Index:     uint32(i),
			Count:     uint32(len(items)),
			Diff:      item.GetDiff(),
		}
		if err := typeMvmntData(e, item.GetData()); err != nil {
			return nil, fmt.Errorf("%w: events[%d].data: %w", ErrMalformed, i, err)
		}
		out[i] = e
	}
	return out, nil
}

// entity says which typed message an MVMNT event's data is.
type entity int

const (
	entityOther entity = iota
	entityDeleted
	entityCustomer
	entityCompany
	entityContact
	entityCarrier
	entityCarrierFactor
	entityPaymentMethod
	entityVendor
	entityLocation
	entityShipmentDelivered
)

// mvmntEntities maps every known MVMNT event type to the entity its data describes. It is derived
// from the names of the EventType enum by the rules in mvmnt.v1.Event.data, so a type added to
// the enum is typed without another table to keep in step.
var mvmntEntities = func() map[mvmntv1.EventType]entity {
	m := make(map[mvmntv1.EventType]entity)
	for num, full := range mvmntv1.EventType_name {
		name := strings.TrimPrefix(full, "EVENT_TYPE_")
		m[mvmntv1.EventType(num)] = entityOf(name)
	}
	return m
}()

func entityOf(name string) entity {
	group, action, _ := strings.Cut(name, "_")
	lifecycle := strings.HasSuffix(name, "_CREATED") || strings.HasSuffix(name, "_UPDATED")
	switch {
	case strings.HasSuffix(name, "_DELETED"):
		return entityDeleted
	case name == "SHIPMENT_DELIVERED":
		return entityShipmentDelivered
	case strings.Contains(name, "_CONTACT_") && lifecycle:
		return entityContact
	case strings.Contains(name, "_PAYMENT_METHOD_") && lifecycle:
		return entityPaymentMethod
	case strings.HasPrefix(name, "CARRIER_FACTOR_") && lifecycle:
		return entityCarrierFactor
	case action == "CREATED" || action == "UPDATED" || (group == "CARRIER" && (action == "ACTIVATED" || action == "DEACTIVATED")):
		switch group {
		case "CUSTOMER":
			return entityCustomer
		case "COMPANY":
			return entityCompany
		case "CARRIER":
			return entityCarrier
		case "VENDOR":
			return entityVendor
		case "LOCATION":
			return entityLocation
		}
	}
	return entityOther
}

// typeMvmntData sets e.data from the item's JSON data.
func typeMvmntData(e *mvmntv1.Event, data *structpb.Struct) error {
	kind := entityOther
	if e.GetEventType() != mvmntv1.EventType_EVENT_TYPE_UNSPECIFIED {
		kind = mvmntEntities[e.GetEventType()]
	}
	if kind == entityOther {
		e.Data = &mvmntv1.Event_Other{Other: untyped(data)}
		return nil
	}
	raw, err := protojson.Marshal(data)
	if err != nil {
		return err
	}
	var m proto.Message
	switch kind {
	case entityDeleted:
		v := &mvmntv1.EntityRef{}
		m, e.Data = v, &mvmntv1.Event_Deleted{Deleted: v}
	case entityCustomer:
		v := &mvmntv1.Customer{}
		m, e.Data = v, &mvmntv1.Event_Customer{Customer: v}
	case entityCompany:
		v := &mvmntv1.Company{}
		m, e.Data = v, &mvmntv1.Event_Company{Company: v}
	case entityContact:
		v := &mvmntv1.Contact{}
		m, e.Data = v, &mvmntv1.Event_Contact{Contact: v}
	case entityCarrier:
		v := &mvmntv1.Carrier{}
		m, e.Data = v, &mvmntv1.Event_Carrier{Carrier: v}
	case entityCarrierFactor:
		v := &mvmntv1.CarrierFactor{}
		m, e.Data = v, &mvmntv1.Event_CarrierFactor{CarrierFactor: v}
	case entityPaymentMethod:
		v := &mvmntv1.PaymentMethod{}
		m, e.Data = v, &mvmntv1.Event_PaymentMethod{PaymentMethod: v}
	case entityVendor:
		v := &mvmntv1.Vendor{}
		m, e.Data = v, &mvmntv1.Event_Vendor{Vendor: v}
	case entityLocation:
		v := &mvmntv1.Location{}
		m, e.Data = v, &mvmntv1.Event_Location{Location: v}
	case entityShipmentDelivered:
		v := &mvmntv1.ShipmentDelivered{}
		m, e.Data = v, &mvmntv1.Event_ShipmentDelivered{ShipmentDelivered: v}
	}
	return UnmarshalOptions.Unmarshal(raw, m)
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
