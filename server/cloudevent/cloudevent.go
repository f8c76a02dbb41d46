// Package cloudevent turns hookstream events into CloudEvents (https://cloudevents.io, spec
// version 1.0): the io.cloudevents.v1 protobuf format that EventService sends on gRPC, and the
// JSON event format (structured mode) the internal API's HTTP mapping writes. The mapping of
// the envelope to attributes is documented once, on hookstream.v1.EventFormat in
// event_service.proto, and is stable: consumers filter and route on these values.
//
// Every function here is pure and safe for concurrent use.
package cloudevent

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	moveapiv1 "github.com/hookstream/hookstream/gen/hookstream/moveapi/v1"
	mvmntv1 "github.com/hookstream/hookstream/gen/hookstream/mvmnt/v1"
	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/convert"
)

// SpecVersion is the CloudEvents version of every event this package makes.
const SpecVersion = "1.0"

// Media types of CloudEvents and of their data.
const (
	// ContentTypeJSON is the media type of one CloudEvent in the JSON event format.
	ContentTypeJSON = "application/cloudevents+json"
	// DataContentTypeProtobuf is the datacontenttype of data carried as proto_data.
	DataContentTypeProtobuf = "application/protobuf"
	// DataContentTypeJSON is the datacontenttype of data carried as JSON.
	DataContentTypeJSON = "application/json"
)

// The attributes this package sets beside the required ones, named as CloudEvents names them
// (extension names are lower-case letters and digits only).
const (
	AttrTime            = "time"
	AttrSubject         = "subject"
	AttrDataContentType = "datacontenttype"
	AttrDataSchema      = "dataschema"
	// AttrProvider is the provider, in lower case: moveapi, movement, mvmnt, listener.
	AttrProvider = "provider"
	// AttrSequence is the event's position in the event log, as a decimal string: a sequence can
	// exceed the CloudEvents Integer (32 bits).
	AttrSequence = "sequence"
	// AttrDeliveryAttempt is the delivery attempt of a Subscribe delivery, an Integer from 1.
	AttrDeliveryAttempt = "deliveryattempt"
	// AttrTraceParent and AttrTraceState are the CloudEvents Distributed Tracing extension's,
	// from the event's W3C trace context.
	AttrTraceParent = "traceparent"
	AttrTraceState  = "tracestate"
)

// ErrNoEvent is returned by New for a nil event.
var ErrNoEvent = errors.New("no event")

// New returns e as a CloudEvent in the protobuf format, its typed payload as proto_data. attempt
// is the delivery attempt of a Subscribe delivery, set as the "deliveryattempt" extension; 0
// leaves it out. An event without a payload has no data. Errors wrap ErrNoEvent, or are the
// payload's encoding error.
func New(e *hookstreamv1.Event, attempt uint32) (*pb.CloudEvent, error) {
	if e == nil {
		return nil, ErrNoEvent
	}
	ce := &pb.CloudEvent{
		Id:          e.GetId(),
		Source:      Source(e.GetSource()),
		SpecVersion: SpecVersion,
		Type:        Type(e),
		Attributes:  map[string]*pb.CloudEventAttributeValue{},
	}
	attrs := ce.Attributes
	if t := occurred(e); t != nil {
		attrs[AttrTime] = &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: t}}
	}
	if s := Subject(e); s != "" {
		attrs[AttrSubject] = str(s)
	}
	attrs[AttrProvider] = str(providerName(e.GetProvider()))
	if seq := e.GetSequence(); seq != 0 {
		attrs[AttrSequence] = str(strconv.FormatUint(seq, 10))
	}
	if attempt > 0 {
		attrs[AttrDeliveryAttempt] = &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeInteger{CeInteger: int32(min(attempt, 1<<31-1))}}
	}
	if tc := e.GetTraceContext(); tc.GetTraceparent() != "" {
		attrs[AttrTraceParent] = str(tc.GetTraceparent())
		if tc.GetTracestate() != "" {
			attrs[AttrTraceState] = str(tc.GetTracestate())
		}
	}
	if p := Data(e); p != nil {
		data, err := anypb.New(p)
		if err != nil {
			return nil, fmt.Errorf("cloudevent data of event %s: %w", e.GetId(), err)
		}
		ce.Data = &pb.CloudEvent_ProtoData{ProtoData: data}
		attrs[AttrDataContentType] = str(DataContentTypeProtobuf)
		attrs[AttrDataSchema] = &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeUri{CeUri: data.GetTypeUrl()}}
	}
	return ce, nil
}

func str(s string) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: s}}
}

// Type is the CloudEvents type of e: "hookstream.<provider>.<type>", the type as the provider
// wrote it ("hookstream.mvmnt.SHIPMENT_DELIVERED"); "hookstream.<provider>" when e has none.
func Type(e *hookstreamv1.Event) string {
	t := "hookstream." + providerName(e.GetProvider())
	if e.GetType() != "" {
		t += "." + e.GetType()
	}
	return t
}

// providerName is p's lower-case name without the enum prefix ("mvmnt"), "unspecified" for the
// zero value, or the number of a value this build does not know.
func providerName(p hookstreamv1.Provider) string {
	return strings.ToLower(strings.TrimPrefix(p.String(), "PROVIDER_"))
}

// Source is the CloudEvents source of an event whose envelope source is s: s itself (a route
// path, "grpc", or "grpc:<principal>"), with every byte a URI reference may not hold
// percent-encoded, so that it always parses as a URI reference (RFC 3986). An empty s, which no
// stored event has, becomes "hookstream", since the attribute is required.
func Source(s string) string {
	if s == "" {
		return "hookstream"
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if uriChar(c) {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// uriChar reports whether c may appear as itself in a URI reference: unreserved, gen-delims and
// sub-delims characters of RFC 3986. "%" is escaped too, since s is not percent-encoded.
func uriChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~:/?#[]@!$&'()*+,;=", c) >= 0
}

// occurred is the CloudEvents time of e: when it happened, else when it was received.
func occurred(e *hookstreamv1.Event) *timestamppb.Timestamp {
	if t := e.GetOccurredAt(); t != nil {
		return t
	}
	return e.GetReceivedAt()
}

// Data is e's typed payload, the data of its CloudEvent: a *moveapiv1.Webhook,
// *movementv1.Webhook, *mvmntv1.Event or *listenerv1.Notification; nil when it has none.
func Data(e *hookstreamv1.Event) proto.Message {
	m := e.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("payload"))
	if fd == nil {
		return nil
	}
	return m.Get(fd).Message().Interface()
}

// Subject is the CloudEvents subject of e: the id of the object its payload is about, "" when
// there is none (listener notifications, payloads without the id).
func Subject(e *hookstreamv1.Event) string {
	switch p := e.GetPayload().(type) {
	case *hookstreamv1.Event_Moveapi:
		return moveAPIJob(p.Moveapi)
	case *hookstreamv1.Event_Movement:
		if id, ok := convert.MovementObjectID(p.Movement); ok && id > 0 {
			return strconv.FormatInt(id, 10)
		}
	case *hookstreamv1.Event_Mvmnt:
		return mvmntEntity(p.Mvmnt)
	}
	return ""
}

// moveAPIJob is the job a Move API event is about: detail.job_id ("job.state.*"), else the UGC
// job's id.
func moveAPIJob(w *moveapiv1.Webhook) string {
	if id := w.GetDetail().GetJobId(); id != "" {
		return id
	}
	return w.GetDetail().GetEventAttributes().GetJob().GetId()
}

// mvmntEntity is the id of the entity an MVMNT event's data describes: the "id" field every typed
// form of the data has.
func mvmntEntity(e *mvmntv1.Event) string {
	m := e.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("data"))
	if fd == nil {
		return ""
	}
	data := fd.Message().Fields().ByName("id")
	if data == nil || data.Kind() != protoreflect.StringKind {
		return ""
	}
	return m.Get(fd).Message().Get(data).String()
}
