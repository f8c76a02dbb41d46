package quarantine_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	mvmntv1 "github.com/hookstream/hookstream/gen/hookstream/mvmnt/v1"
	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/convert"
	"github.com/hookstream/hookstream/server/eventlog"
	"github.com/hookstream/hookstream/server/internal/testenv"
)

func setup(t *testing.T) (hookstreamv1.WebhookServiceClient, hookstreamv1.QuarantineServiceClient, hookstreamv1.EventServiceClient, *eventlog.Log) {
	t.Helper()
	env := testenv.Services(t, testenv.OpenLog(t))
	return env.Webhooks, env.Quarantine, env.Events, env.Log
}

// put stores entry in l's quarantine.
func put(t *testing.T, l *eventlog.Log, entry *hookstreamv1.QuarantineEntry) {
	t.Helper()
	res, err := l.Quarantine(context.Background(), entry)
	if err == nil {
		err = res[0].Err
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestListGetRedrive(t *testing.T) {
	t.Parallel()
	webhooks, q, _, l := setup(t)
	ctx := context.Background()

	// An invalid delivery is rejected and quarantined.
	bad := []byte(`{"sentAt":"2025-01-15T14:30:00Z","events":[]}`)
	d := &mvmntv1.Delivery{}
	if err := convert.Unmarshal(bad, d); err != nil {
		t.Fatal(err)
	}
	if _, err := webhooks.ReceiveMvmntDelivery(ctx, &hookstreamv1.ReceiveMvmntDeliveryRequest{Delivery: d, Raw: bad}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("invalid delivery: got %v, want InvalidArgument", err)
	}
	// A valid payload quarantined earlier (say, under an older schema) can be redriven.
	goodID := uuid.Must(uuid.NewV7()).String()
	good := []byte(`{"sentAt":"2025-01-15T14:30:00Z","events":[{"event":"SHIPMENT_DELIVERED","timestamp":"2025-01-15T14:30:00Z","data":{"id":"660e8400-e29b-41d4-a716-446655440000","friendlyId":"SHP-1","key":null}}]}`)
	put(t, l, &hookstreamv1.QuarantineEntry{
		Id: goodID, Reason: hookstreamv1.QuarantineEntry_REASON_INVALID,
		Provider: hookstreamv1.Provider_PROVIDER_MVMNT, Source: "/webhooks/mvmnt", Raw: good, ReceivedAt: timestamppb.Now(),
	})

	list, err := q.ListEntries(ctx, &hookstreamv1.ListEntriesRequest{Provider: hookstreamv1.Provider_PROVIDER_MVMNT, Reason: hookstreamv1.QuarantineEntry_REASON_INVALID})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetEntries()) != 2 {
		t.Fatalf("listed %d entries, want 2", len(list.GetEntries()))
	}
	invalid := list.GetEntries()[0]
	if string(invalid.GetRaw()) != string(bad) || len(invalid.GetViolations()) != 1 || invalid.GetViolations()[0].GetField() != "delivery.events" {
		t.Errorf("entry %v, want the raw body and its violation", invalid)
	}
	if other, err := q.ListEntries(ctx, &hookstreamv1.ListEntriesRequest{Reason: hookstreamv1.QuarantineEntry_REASON_DEAD_LETTER}); err != nil || len(other.GetEntries()) != 0 {
		t.Errorf("dead letters: got %v %v, want none", other, err)
	}

	got, err := q.GetEntry(ctx, &hookstreamv1.GetEntryRequest{Id: invalid.GetId()})
	if err != nil || got.GetEntry().GetId() != invalid.GetId() {
		t.Fatalf("GetEntry: %v %v", got, err)
	}
	if _, err := q.GetEntry(ctx, &hookstreamv1.GetEntryRequest{Id: "01a2f000-0000-7000-8000-0000000000ff"}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown entry: got %v, want NotFound", err)
	}

	// Still invalid: the redrive fails and the entry stays.
	if _, err := q.RedriveEntry(ctx, &hookstreamv1.RedriveEntryRequest{Id: invalid.GetId()}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("redrive of an invalid payload: got %v, want InvalidArgument", err)
	}
	// Valid now: stored as an event, and the entry leaves the quarantine.
	resp, err := q.RedriveEntry(ctx, &hookstreamv1.RedriveEntryRequest{Id: goodID})
	if err != nil {
		t.Fatalf("redrive: %v", err)
	}
	if len(resp.GetReceipts()) != 1 || resp.GetReceipts()[0].GetSequence() == 0 {
		t.Errorf("redrive receipts %v, want one stored event", resp.GetReceipts())
	}
	if _, err := q.GetEntry(ctx, &hookstreamv1.GetEntryRequest{Id: goodID}); status.Code(err) != codes.NotFound {
		t.Errorf("redriven entry: got %v, want NotFound", err)
	}
}

// TestRedriveDeadLetter stores a dead-lettered event again as a new event with its own id.
func TestRedriveDeadLetter(t *testing.T) {
	t.Parallel()
	_, q, _, l := setup(t)
	ctx := context.Background()
	ev := &hookstreamv1.Event{
		Id: uuid.Must(uuid.NewV7()).String(), Provider: hookstreamv1.Provider_PROVIDER_MVMNT, Type: "SHIPMENT_BOOKED",
		DedupKey: "SHIPMENT_BOOKED/x/y", Raw: []byte(`{}`), Sequence: 7,
		Payload: &hookstreamv1.Event_Mvmnt{Mvmnt: &mvmntv1.Event{Event: "SHIPMENT_BOOKED", Timestamp: timestamppb.Now()}},
	}
	id := uuid.Must(uuid.NewV7()).String()
	put(t, l, &hookstreamv1.QuarantineEntry{Id: id, Reason: hookstreamv1.QuarantineEntry_REASON_DEAD_LETTER, Provider: ev.Provider, Event: ev, ConsumerGroup: "g", DeliveryAttempts: 5, ReceivedAt: timestamppb.Now()})
	resp, err := q.RedriveEntry(ctx, &hookstreamv1.RedriveEntryRequest{Id: id})
	if err != nil {
		t.Fatalf("redrive: %v", err)
	}
	r := resp.GetReceipts()
	if len(r) != 1 || r[0].GetDuplicate() || r[0].GetEventId() == ev.GetId() {
		t.Fatalf("receipts %v, want one new event", r)
	}
	stored := testenv.Stored(t, l)
	if len(stored) != 1 || stored[0].GetId() != r[0].GetEventId() || stored[0].GetSequence() != r[0].GetSequence() || stored[0].GetType() != "SHIPMENT_BOOKED" {
		t.Errorf("stored %v, want the one new event %s", stored, r[0].GetEventId())
	}
	subjects, err := eventlog.FilterSubjects(&hookstreamv1.EventFilter{Types: []string{"SHIPMENT_BOOKED"}})
	if err != nil {
		t.Fatal(err)
	}
	if found, _, err := l.ListEvents(ctx, subjects, 1, 10, 1<<20); err != nil || len(found) != 1 {
		t.Errorf("listed by its type: %v %v, want the event on hookstream.events.mvmnt.SHIPMENT_BOOKED", found, err)
	}
}
