package samples_test

import (
	"bytes"
	"context"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	mvmntv1 "github.com/hookstream/hookstream/gen/hookstream/mvmnt/v1"
	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/ingest"
	"github.com/hookstream/hookstream/server/internal/testenv"
	"github.com/hookstream/hookstream/server/samples"
)

// TestTypes checks that every documented event type has a sample and that there is no other:
// MVMNT's are the EventType enum (a type added to the enum without a sample fails here), the
// others the lists of the providers' documentation.
func TestTypes(t *testing.T) {
	t.Parallel()
	var mvmnt []string
	for num, name := range mvmntv1.EventType_name {
		if num != 0 {
			mvmnt = append(mvmnt, strings.TrimPrefix(name, "EVENT_TYPE_"))
		}
	}
	sort.Strings(mvmnt)
	if len(mvmnt) != 73 {
		t.Errorf("mvmnt.v1.EventType: got %d types, want MVMNT's 73", len(mvmnt))
	}
	for _, tt := range []struct {
		provider string
		want     []string
	}{
		{provider: samples.MoveAPI, want: []string{"job.state.completed", "job.state.started", "ugc.job.state.completed", "ugc.job.state.failed"}},
		{provider: samples.Movement, want: []string{"call.finished", "email.sent", "subscription.unsubscribe", "text_message.received", "text_message.sent"}},
		{provider: samples.MVMNT, want: mvmnt},
		{provider: samples.Listener, want: []string{"incident.created"}},
	} {
		t.Run(tt.provider, func(t *testing.T) {
			t.Parallel()
			got, err := samples.Types(tt.provider)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Types(%q) (-want +got):\n%s", tt.provider, diff)
			}
		})
	}
}

// TestSamplesStore ingests every sample through the ingestion core, as the front door hands it
// a verified delivery, and checks that each is stored once, as a typed event of its own type
// (MVMNT: of its EventType, with data typed by its entity where MVMNT publishes one), and that
// a second body of the same sample is not a duplicate.
func TestSamplesStore(t *testing.T) {
	t.Parallel()
	env := testenv.Services(t, testenv.OpenLog(t))
	for _, provider := range samples.Providers() {
		types, err := samples.Types(provider)
		if err != nil {
			t.Fatal(err)
		}
		for _, typ := range types {
			t.Run(provider+"/"+typ, func(t *testing.T) {
				s, err := samples.Get(provider, typ)
				if err != nil {
					t.Fatal(err)
				}
				now := time.Now()
				first, second := s.Body(now), s.Body(now)
				if bytes.Equal(first, second) {
					t.Errorf("two bodies of one sample are equal: repeated sends would be duplicates")
				}
				for _, body := range [][]byte{first, second} {
					receipts, err := env.Ingest.Ingest(context.Background(), delivery(provider, body))
					if err != nil {
						t.Fatalf("ingest: got error %v, want the event stored", err)
					}
					if len(receipts) != 1 || receipts[0].GetOutcome() != hookstreamv1.Receipt_OUTCOME_STORED {
						t.Fatalf("got receipts %v, want one stored", receipts)
					}
					e := find(t, env, receipts[0].GetEventId())
					if e.GetType() != typ {
						t.Errorf("stored type: got %q, want %q", e.GetType(), typ)
					}
					checkPayload(t, provider, typ, e)
				}
			})
		}
	}
}

// delivery is the verified delivery of body as the front door builds it for provider's route.
func delivery(provider string, body []byte) ingest.Delivery {
	d := ingest.Delivery{Raw: body, ReceivedAt: time.Now(), Source: "/webhooks/" + provider}
	switch provider {
	case samples.MoveAPI:
		d.Provider, d.WebhookID = hookstreamv1.Provider_PROVIDER_MOVEAPI, "msg_"+strings.ReplaceAll(time.Now().Format("150405.000000000"), ".", "")
	case samples.Movement:
		d.Provider = hookstreamv1.Provider_PROVIDER_MOVEMENT
	case samples.MVMNT:
		d.Provider = hookstreamv1.Provider_PROVIDER_MVMNT
	case samples.Listener:
		d.Provider, d.ListenerID = hookstreamv1.Provider_PROVIDER_LISTENER, testenv.ListenerID
		d.Source = "/webhooks/v1/listeners/" + testenv.ListenerID + "/notify"
	}
	return d
}

// find returns the stored event id.
func find(t *testing.T, env *testenv.Env, id string) *hookstreamv1.Event {
	t.Helper()
	resp, err := env.Events.GetEvent(context.Background(), &hookstreamv1.GetEventRequest{Id: id})
	if err != nil {
		t.Fatalf("get stored event %s: %v", id, err)
	}
	return resp.GetEvent()
}

// checkPayload checks that e carries the typed payload of its provider, and for MVMNT the data
// of its entity.
func checkPayload(t *testing.T, provider, typ string, e *hookstreamv1.Event) {
	t.Helper()
	switch provider {
	case samples.MoveAPI:
		if e.GetMoveapi().GetDetail() == nil {
			t.Errorf("got payload %T, want a Move API webhook with its detail", e.GetPayload())
		}
	case samples.Movement:
		if e.GetMovement().GetObject() == nil {
			t.Errorf("got payload %T, want a Movement webhook with its object", e.GetPayload())
		}
	case samples.MVMNT:
		m := e.GetMvmnt()
		if want := mvmntv1.EventType(mvmntv1.EventType_value["EVENT_TYPE_"+typ]); m.GetEventType() != want {
			t.Errorf("event type: got %v, want %v", m.GetEventType(), want)
		}
		if m.GetData() == nil {
			t.Errorf("got no data, want the item's data")
		}
		if _, other := m.GetData().(*mvmntv1.Event_Other); other && publishedShape(typ) {
			t.Errorf("data: got untyped, want the entity of %s typed", typ)
		}
	case samples.Listener:
		if e.GetListener().GetBody() == nil {
			t.Errorf("got payload %T, want a listener notification with its body", e.GetPayload())
		}
	}
}

// publishedShape reports whether MVMNT publishes the shape of typ's data (see mvmnt.v1.Event.data).
func publishedShape(typ string) bool {
	group, action, _ := strings.Cut(typ, "_")
	switch {
	case strings.HasSuffix(typ, "_DELETED"), typ == "SHIPMENT_DELIVERED":
		return true
	case strings.HasSuffix(typ, "_INVOICE_CREATED"), strings.HasSuffix(typ, "_PAYMENT_CREATED"):
		return false
	case group == "SHIPMENT", group == "QUOTE", group == "COMMISSION", group == "DOCUMENT":
		return false
	}
	return action != ""
}

// TestGetUnknown checks the errors for a provider or type without a sample.
func TestGetUnknown(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, provider, typ string
		want                error
	}{
		{name: "unknown_provider", provider: "stripe", typ: "charge.succeeded", want: samples.ErrUnknownProvider},
		{name: "unknown_type", provider: samples.MVMNT, typ: "SHIPMENT_TELEPORTED", want: samples.ErrUnknownType},
		{name: "path_as_type", provider: samples.MVMNT, typ: "../movement/call.finished", want: samples.ErrUnknownType},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := samples.Get(tt.provider, tt.typ); !errors.Is(err, tt.want) {
				t.Errorf("Get(%q, %q): got %v, want %v", tt.provider, tt.typ, err, tt.want)
			}
		})
	}
	if _, err := samples.Get(samples.MVMNT, "shipment_created"); err != nil {
		t.Errorf("Get(mvmnt, shipment_created): got %v, want the sample of SHIPMENT_CREATED", err)
	}
}
