package cloudevent_test

import (
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	moveapiv1 "github.com/hookstream/hookstream/gen/hookstream/moveapi/v1"
	movementv1 "github.com/hookstream/hookstream/gen/hookstream/movement/v1"
	mvmntv1 "github.com/hookstream/hookstream/gen/hookstream/mvmnt/v1"
	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/cloudevent"
	"github.com/hookstream/hookstream/server/convert"
)

func TestSource(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{name: "route", in: "/webhooks/mvmnt", want: "/webhooks/mvmnt"},
		{name: "listener_route", in: "/webhooks/v1/listeners/0b6f7c1e-5a4d-4c3b-9a2e-1f0e9d8c7b6a/notify", want: "/webhooks/v1/listeners/0b6f7c1e-5a4d-4c3b-9a2e-1f0e9d8c7b6a/notify"},
		{name: "grpc", in: "grpc", want: "grpc"},
		{name: "grpc_principal", in: "grpc:billing-service", want: "grpc:billing-service"},
		{name: "principal_with_spaces_and_percent", in: "grpc:CN=billing svc,O=ACME 100%", want: "grpc:CN=billing%20svc,O=ACME%20100%25"},
		{name: "non_ascii", in: "grpc:zoë", want: "grpc:zo%C3%AB"},
		{name: "empty", in: "", want: "hookstream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := cloudevent.Source(tt.in)
			if got != tt.want {
				t.Errorf("Source(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if u, err := url.Parse(got); err != nil || u.String() != got {
				t.Errorf("Source(%q) = %q does not parse back as a URI reference: %v", tt.in, got, err)
			}
		})
	}
}

func TestTypeAndSubject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name              string
		event             *hookstreamv1.Event
		wantType, wantSub string
	}{
		{
			name:     "moveapi_job",
			event:    &hookstreamv1.Event{Provider: hookstreamv1.Provider_PROVIDER_MOVEAPI, Type: "job.state.completed", Payload: &hookstreamv1.Event_Moveapi{Moveapi: &moveapiv1.Webhook{Detail: &moveapiv1.Detail{JobId: "j1"}}}},
			wantType: "hookstream.moveapi.job.state.completed", wantSub: "j1",
		},
		{
			name: "moveapi_ugc_job",
			event: &hookstreamv1.Event{Provider: hookstreamv1.Provider_PROVIDER_MOVEAPI, Type: "ugc.job.state.failed", Payload: &hookstreamv1.Event_Moveapi{Moveapi: &moveapiv1.Webhook{Detail: &moveapiv1.Detail{
				EventAttributes: &moveapiv1.EventAttributes{Job: &moveapiv1.Job{Id: "ugc1"}},
			}}}},
			wantType: "hookstream.moveapi.ugc.job.state.failed", wantSub: "ugc1",
		},
		{
			name:     "movement_without_id",
			event:    &hookstreamv1.Event{Provider: hookstreamv1.Provider_PROVIDER_MOVEMENT, Type: "call.finished", Payload: &hookstreamv1.Event_Movement{Movement: &movementv1.Webhook{Object: &movementv1.Webhook_Call{Call: &movementv1.Call{}}}}},
			wantType: "hookstream.movement.call.finished",
		},
		{
			name:     "mvmnt_deleted",
			event:    &hookstreamv1.Event{Provider: hookstreamv1.Provider_PROVIDER_MVMNT, Type: "CARRIER_DELETED", Payload: &hookstreamv1.Event_Mvmnt{Mvmnt: &mvmntv1.Event{Data: &mvmntv1.Event_Deleted{Deleted: &mvmntv1.EntityRef{Id: "e1"}}}}},
			wantType: "hookstream.mvmnt.CARRIER_DELETED", wantSub: "e1",
		},
		{
			name:     "mvmnt_without_data",
			event:    &hookstreamv1.Event{Provider: hookstreamv1.Provider_PROVIDER_MVMNT, Type: "NEW_THING", Payload: &hookstreamv1.Event_Mvmnt{Mvmnt: &mvmntv1.Event{}}},
			wantType: "hookstream.mvmnt.NEW_THING",
		},
		{
			name:     "no_type_no_payload",
			event:    &hookstreamv1.Event{Provider: hookstreamv1.Provider_PROVIDER_LISTENER},
			wantType: "hookstream.listener",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := cloudevent.Type(tt.event); got != tt.wantType {
				t.Errorf("Type = %q, want %q", got, tt.wantType)
			}
			if got := cloudevent.Subject(tt.event); got != tt.wantSub {
				t.Errorf("Subject = %q, want %q", got, tt.wantSub)
			}
		})
	}
}

// TestNewWithoutPayload: an event without a payload is a CloudEvent without data, which the JSON
// event format still writes; a nil event is refused.
func TestNewWithoutPayload(t *testing.T) {
	t.Parallel()
	received := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	e := &hookstreamv1.Event{Id: "01a2f000-0000-7000-8000-0000000000ff", Provider: hookstreamv1.Provider_PROVIDER_LISTENER, Source: "grpc", ReceivedAt: timestamppb.New(received)}
	ce, err := cloudevent.New(e, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := &pb.CloudEvent{Id: e.GetId(), Source: "grpc", SpecVersion: "1.0", Type: "hookstream.listener", Attributes: map[string]*pb.CloudEventAttributeValue{
		"time":     {Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(received)}},
		"provider": {Attr: &pb.CloudEventAttributeValue_CeString{CeString: "listener"}},
	}}
	if diff := cmp.Diff(want, ce, protocmp.Transform()); diff != "" {
		t.Errorf("cloudevent differs (-want +got):\n%s", diff)
	}
	b, err := cloudevent.MarshalJSON(ce, convert.MarshalOptions)
	wantJSON := `{"specversion":"1.0","id":"01a2f000-0000-7000-8000-0000000000ff","source":"grpc","type":"hookstream.listener","time":"2026-01-02T03:04:05.000000006Z","provider":"listener"}`
	if err != nil || string(b) != wantJSON {
		t.Errorf("MarshalJSON = %s, %v, want %s", b, err, wantJSON)
	}
	if _, err := cloudevent.New(nil, 0); !errors.Is(err, cloudevent.ErrNoEvent) {
		t.Errorf("New(nil): got %v, want ErrNoEvent", err)
	}
}

func ExampleMarshalJSON() {
	e := &hookstreamv1.Event{
		Id:         "01a2f000-0000-7000-8000-0000000000ff",
		Provider:   hookstreamv1.Provider_PROVIDER_MVMNT,
		Type:       "CARRIER_DELETED",
		Source:     "/webhooks/mvmnt",
		Sequence:   42,
		OccurredAt: timestamppb.New(time.Date(2025, 1, 15, 14, 30, 0, 0, time.UTC)),
		Payload: &hookstreamv1.Event_Mvmnt{Mvmnt: &mvmntv1.Event{
			Event: "CARRIER_DELETED",
			Data:  &mvmntv1.Event_Deleted{Deleted: &mvmntv1.EntityRef{Id: "660e8400-e29b-41d4-a716-446655440000"}},
		}},
	}
	ce, err := cloudevent.New(e, 0)
	if err != nil {
		panic(err)
	}
	b, err := cloudevent.MarshalJSON(ce, convert.MarshalOptions)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(b))
	// Output:
	// {"specversion":"1.0","id":"01a2f000-0000-7000-8000-0000000000ff","source":"/webhooks/mvmnt","type":"hookstream.mvmnt.CARRIER_DELETED","subject":"660e8400-e29b-41d4-a716-446655440000","datacontenttype":"application/json","time":"2025-01-15T14:30:00Z","data":{"event":"CARRIER_DELETED","deleted":{"id":"660e8400-e29b-41d4-a716-446655440000"}},"provider":"mvmnt","sequence":"42"}
}
