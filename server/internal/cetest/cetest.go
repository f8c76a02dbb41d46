// Package cetest holds what tests of CloudEvents share: one sample event of each provider, sent
// through WebhookService, and checks of a CloudEvent, in the protobuf format or the JSON event
// format, against the CloudEvents spec's attributes and hookstream's mapping of the envelope.
package cetest

import (
	"context"
	"encoding/json"
	"net/url"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"

	moveapiv1 "github.com/hookstream/hookstream/gen/hookstream/moveapi/v1"
	movementv1 "github.com/hookstream/hookstream/gen/hookstream/movement/v1"
	mvmntv1 "github.com/hookstream/hookstream/gen/hookstream/mvmnt/v1"
	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/cloudevent"
	"github.com/hookstream/hookstream/server/convert"
	"github.com/hookstream/hookstream/server/internal/testenv"
)

// Sent is a sample event stored by Send, with what its CloudEvent must say that the envelope
// does not: the subject, written down from the sample.
type Sent struct {
	// Name is the provider's name, for subtests.
	Name string
	// ID is the stored event's id.
	ID string
	// Type and Subject are the CloudEvent's attributes.
	Type, Subject string
}

// Send stores one sample event of each provider through w, the listener's notification to
// listenerID (which must be configured), and returns them in the order moveapi, movement,
// mvmnt, listener. It finds the listener's event, whose id NotifyListener does not answer, with
// ev: w's log must hold no other listener event.
func Send(t testing.TB, w hookstreamv1.WebhookServiceClient, ev hookstreamv1.EventServiceClient, listenerID string) []Sent {
	t.Helper()
	ctx := context.Background()
	check := func(r *hookstreamv1.Receipt, err error) string {
		t.Helper()
		if err != nil || r.GetOutcome() != hookstreamv1.Receipt_OUTCOME_STORED {
			t.Fatalf("send: %v %v", r, err)
		}
		return r.GetEventId()
	}
	var out []Sent
	ma := &moveapiv1.Webhook{}
	raw := testenv.Sample(t, "moveapi/job_state_completed.json", ma)
	r, err := w.ReceiveMoveApiWebhook(ctx, &hookstreamv1.ReceiveMoveApiWebhookRequest{Webhook: ma, WebhookId: "msg_cloudevent", Raw: raw})
	out = append(out, Sent{"moveapi", check(r.GetReceipt(), err), "hookstream.moveapi.job.state.completed", "8c2f4e1a-3b5d-4c7e-9f0a-1b2c3d4e5f60"})

	mo := &movementv1.Webhook{}
	raw = testenv.Sample(t, "movement/call_finished.json", mo)
	r2, err := w.ReceiveMovementWebhook(ctx, &hookstreamv1.ReceiveMovementWebhookRequest{Webhook: mo, Raw: raw})
	out = append(out, Sent{"movement", check(r2.GetReceipt(), err), "hookstream.movement.call.finished", "1050"})

	mv := &mvmntv1.Delivery{}
	raw = testenv.Sample(t, "mvmnt/shipment_delivered.json", mv)
	r3, err := w.ReceiveMvmntDelivery(ctx, &hookstreamv1.ReceiveMvmntDeliveryRequest{Delivery: mv, Raw: raw})
	var first *hookstreamv1.Receipt
	if len(r3.GetReceipts()) == 1 {
		first = r3.GetReceipts()[0]
	}
	out = append(out, Sent{"mvmnt", check(first, err), "hookstream.mvmnt.SHIPMENT_DELIVERED", "660e8400-e29b-41d4-a716-446655440000"})

	body := &structpb.Struct{}
	raw = testenv.Sample(t, "listener/incident_created.json", body)
	if _, err := w.NotifyListener(ctx, &hookstreamv1.NotifyListenerRequest{ListenerId: listenerID, Body: body, Raw: raw}); err != nil {
		t.Fatalf("notify listener: %v", err)
	}
	page, err := ev.ListEvents(ctx, &hookstreamv1.ListEventsRequest{Filter: &hookstreamv1.EventFilter{Providers: []hookstreamv1.Provider{hookstreamv1.Provider_PROVIDER_LISTENER}}})
	if err != nil || len(page.GetEvents()) != 1 {
		t.Fatalf("listener events: %v %v, want 1", page, err)
	}
	return append(out, Sent{Name: "listener", ID: page.GetEvents()[0].GetId(), Type: "hookstream.listener.incident.created"})
}

// extensionName is the form the CloudEvents spec gives attribute names.
var extensionName = regexp.MustCompile(`^[a-z0-9]{1,20}$`)

// Check checks ce against the spec's required attributes (id non-empty, source a non-empty URI
// reference, specversion "1.0", type non-empty) and hookstream's mapping of want, its envelope:
// type and subject as s says, time, the extensions (deliveryattempt attempt, absent when 0),
// datacontenttype and dataschema, and proto_data unpacking to the envelope's typed payload.
func Check(t testing.TB, ce *pb.CloudEvent, want *hookstreamv1.Event, s Sent, attempt uint32) {
	t.Helper()
	if ce.GetId() == "" || ce.GetId() != want.GetId() {
		t.Errorf("id %q, want %q", ce.GetId(), want.GetId())
	}
	checkCommon(t, ce.GetSource(), ce.GetSpecVersion(), ce.GetType(), want, s)
	for name := range ce.GetAttributes() {
		if !extensionName.MatchString(name) {
			t.Errorf("attribute name %q is not lower-case letters and digits", name)
		}
	}
	attrs := map[string]any{}
	for name, v := range ce.GetAttributes() {
		switch a := v.GetAttr().(type) {
		case *pb.CloudEventAttributeValue_CeString:
			attrs[name] = a.CeString
		case *pb.CloudEventAttributeValue_CeInteger:
			attrs[name] = a.CeInteger
		case *pb.CloudEventAttributeValue_CeUri:
			attrs[name] = a.CeUri
		case *pb.CloudEventAttributeValue_CeTimestamp:
			attrs[name] = a.CeTimestamp.AsTime()
		default:
			t.Errorf("attribute %s of unexpected type %T", name, a)
		}
	}
	wantAttrs := wantAttributes(want, s, "application/protobuf")
	wantAttrs["time"] = wantTime(want)
	wantAttrs["dataschema"] = "type.googleapis.com/" + string(cloudevent.Data(want).ProtoReflect().Descriptor().FullName())
	if attempt > 0 {
		wantAttrs["deliveryattempt"] = int32(attempt)
	}
	if diff := cmp.Diff(wantAttrs, attrs); diff != "" {
		t.Errorf("attributes differ (-want +got):\n%s", diff)
	}
	got, err := ce.GetProtoData().UnmarshalNew()
	if err != nil {
		t.Fatalf("proto_data: %v", err)
	}
	if diff := cmp.Diff(cloudevent.Data(want), got, protocmp.Transform()); diff != "" {
		t.Errorf("proto_data differs from the envelope's payload (-want +got):\n%s", diff)
	}
}

// CheckJSON checks b, one CloudEvent in the JSON event format, as Check does, with data the
// typed payload as JSON.
func CheckJSON(t testing.TB, b []byte, want *hookstreamv1.Event, s Sent) {
	t.Helper()
	var got map[string]json.RawMessage
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, b)
	}
	str := func(name string) string {
		var s string
		if err := json.Unmarshal(got[name], &s); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		return s
	}
	if id := str("id"); id == "" || id != want.GetId() {
		t.Errorf("id %q, want %q", id, want.GetId())
	}
	checkCommon(t, str("source"), str("specversion"), str("type"), want, s)
	tm, err := time.Parse(time.RFC3339Nano, str("time"))
	if err != nil || !tm.Equal(wantTime(want)) {
		t.Errorf("time %s (%v), want %v in RFC 3339", got["time"], err, wantTime(want))
	}
	attrs := map[string]any{}
	for name := range got {
		switch name {
		case "id", "source", "specversion", "type", "time", "data":
			continue
		}
		if !extensionName.MatchString(name) {
			t.Errorf("attribute name %q is not lower-case letters and digits", name)
		}
		attrs[name] = str(name)
	}
	if diff := cmp.Diff(wantAttributes(want, s, "application/json"), attrs); diff != "" {
		t.Errorf("attributes differ (-want +got):\n%s", diff)
	}
	data := cloudevent.Data(want).ProtoReflect().New().Interface()
	if err := convert.UnmarshalOptions.Unmarshal(got["data"], data); err != nil {
		t.Fatalf("data: %v: %s", err, got["data"])
	}
	if diff := cmp.Diff(cloudevent.Data(want), data, protocmp.Transform()); diff != "" {
		t.Errorf("data differs from the envelope's payload (-want +got):\n%s", diff)
	}
}

// checkCommon checks the required attributes both formats carry alike.
func checkCommon(t testing.TB, source, specVersion, typ string, want *hookstreamv1.Event, s Sent) {
	t.Helper()
	if u, err := url.Parse(source); source == "" || err != nil || u.String() != source {
		t.Errorf("source %q is not a URI reference (%v)", source, err)
	}
	if source != want.GetSource() {
		t.Errorf("source %q, want the envelope's %q", source, want.GetSource())
	}
	if specVersion != "1.0" {
		t.Errorf("specversion %q, want 1.0", specVersion)
	}
	if typ == "" || typ != s.Type {
		t.Errorf("type %q, want %q", typ, s.Type)
	}
}

// wantAttributes are the string attributes both formats carry: subject, datacontenttype, and the
// extensions provider and sequence.
func wantAttributes(want *hookstreamv1.Event, s Sent, contentType string) map[string]any {
	attrs := map[string]any{"datacontenttype": contentType, "provider": s.Name, "sequence": strconv.FormatUint(want.GetSequence(), 10)}
	if s.Subject != "" {
		attrs["subject"] = s.Subject
	}
	return attrs
}

func wantTime(e *hookstreamv1.Event) time.Time {
	if e.GetOccurredAt() != nil {
		return e.GetOccurredAt().AsTime()
	}
	return e.GetReceivedAt().AsTime()
}
