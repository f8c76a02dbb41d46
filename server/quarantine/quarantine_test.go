package quarantine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"google.golang.org/protobuf/testing/protocmp"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	mvmntv1 "github.com/hookstream/hookstream/gen/hookstream/mvmnt/v1"
	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/convert"
	"github.com/hookstream/hookstream/server/eventlog"
	"github.com/hookstream/hookstream/server/ingest"
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

// TestRedriveEachKind redrives an entry of each kind. Payloads still rejected are answered
// INVALID_ARGUMENT naming what is wrong, stay, and are not quarantined a second time; payloads
// valid now are stored exactly as they would have been when they came in: with the Svix id, the
// listener and its dedup id, the MVMNT item's own bytes and its delivery's sentAt.
func TestRedriveEachKind(t *testing.T) {
	t.Parallel()
	env := testenv.Services(t, testenv.OpenLog(t))
	ctx := context.Background()
	ingestHTTP := func(d ingest.Delivery) {
		t.Helper()
		d.ReceivedAt = time.Now()
		if _, err := env.Ingest.Ingest(ctx, d); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("ingest %s: got %v, want InvalidArgument", d.Raw, err)
		}
	}
	// Rejected as they came in through the front door.
	ingestHTTP(ingest.Delivery{Provider: hookstreamv1.Provider_PROVIDER_MOVEAPI, Raw: []byte(`not json`), Source: "/webhooks/moveapi", WebhookID: "msg_bad"})
	ingestHTTP(ingest.Delivery{Provider: hookstreamv1.Provider_PROVIDER_MOVEMENT, Raw: []byte(`{"event":"finished","call":{"id":1}}`), Source: "/webhooks/movement"})
	rejected := testenv.Entries(t, env.Log)
	if len(rejected) != 2 {
		t.Fatalf("quarantine holds %d entries, want 2", len(rejected))
	}
	for _, e := range rejected {
		_, err := env.Quarantine.RedriveEntry(ctx, &hookstreamv1.RedriveEntryRequest{Id: e.GetId()})
		msg := status.Convert(err).Message()
		if status.Code(err) != codes.InvalidArgument || msg == "" || strings.Contains(msg, "<nil>") {
			t.Errorf("redrive of %s: got %v, want InvalidArgument saying what is wrong", e.GetRaw(), err)
		}
	}
	if n := len(testenv.Entries(t, env.Log)); n != 2 {
		t.Errorf("after failed redrives the quarantine holds %d entries, want the same 2", n)
	}

	// Kept under an older schema, valid now: each is stored as it would have been.
	const listener, sentAt = testenv.ListenerID, "2025-01-15T14:31:00Z"
	item := `{"event":"SHIPMENT_BOOKED","timestamp":"2025-01-15T14:30:00Z","data":{"id":"660e8400-e29b-41d4-a716-446655440000"}}`
	sent, _ := time.Parse(time.RFC3339, sentAt)
	index := uint32(3)
	for _, tt := range []struct {
		name  string
		entry *hookstreamv1.QuarantineEntry
		check func(e *hookstreamv1.Event) string
	}{
		{name: "moveapi_keeps_svix_id", entry: &hookstreamv1.QuarantineEntry{
			Provider: hookstreamv1.Provider_PROVIDER_MOVEAPI, Source: "/webhooks/moveapi",
			Raw:     []byte(`{"event_name":"job.state.completed","timestamp":"2023-09-04T10:58:06Z","detail":{"job_id":"j"}}`),
			Headers: map[string]string{ingest.HeaderWebhookID: "msg_kept"},
		}, check: func(e *hookstreamv1.Event) string {
			return e.GetDedupKey() + " " + e.GetSource()
		}},
		{name: "listener_keeps_dedup_id", entry: &hookstreamv1.QuarantineEntry{
			Provider: hookstreamv1.Provider_PROVIDER_LISTENER, Source: "/webhooks/v1/listeners/" + listener + "/notify",
			Raw:     []byte(`{"event_type":"incident.created"}`),
			Headers: map[string]string{ingest.HeaderListenerID: listener, ingest.HeaderDedupID: "evt-7"},
		}, check: func(e *hookstreamv1.Event) string {
			return e.GetDedupKey() + " " + e.GetListener().GetListenerId()
		}},
		{name: "mvmnt_item_keeps_its_bytes", entry: &hookstreamv1.QuarantineEntry{
			Provider: hookstreamv1.Provider_PROVIDER_MVMNT, Source: "/webhooks/mvmnt",
			Raw: []byte(item), ItemIndex: &index, DeliverySentAt: timestamppb.New(sent),
		}, check: func(e *hookstreamv1.Event) string {
			return string(e.GetRaw()) + " " + e.GetMvmnt().GetSentAt().AsTime().Format(time.RFC3339)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.entry.Id = uuid.Must(uuid.NewV7()).String()
			tt.entry.Reason = hookstreamv1.QuarantineEntry_REASON_INVALID
			tt.entry.ReceivedAt = timestamppb.Now()
			put(t, env.Log, tt.entry)
			resp, err := env.Quarantine.RedriveEntry(ctx, &hookstreamv1.RedriveEntryRequest{Id: tt.entry.GetId()})
			if err != nil {
				t.Fatalf("redrive: %v", err)
			}
			r := resp.GetReceipts()
			if len(r) != 1 || r[0].GetOutcome() != hookstreamv1.Receipt_OUTCOME_STORED {
				t.Fatalf("receipts %v, want one stored event", r)
			}
			e, err := env.Log.FindEvent(ctx, r[0].GetEventId())
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{
				"moveapi_keeps_svix_id":      "msg_kept /webhooks/moveapi",
				"listener_keeps_dedup_id":    listener + "/id:evt-7 " + listener,
				"mvmnt_item_keeps_its_bytes": item + " " + sentAt,
			}[tt.name]
			if got := tt.check(e); got != want {
				t.Errorf("stored %q, want %q", got, want)
			}
			if _, err := env.Quarantine.GetEntry(ctx, &hookstreamv1.GetEntryRequest{Id: tt.entry.GetId()}); status.Code(err) != codes.NotFound {
				t.Errorf("redriven entry: got %v, want NotFound", err)
			}
		})
	}
}

// TestFailedRedriveChangesNothing redrives entries still rejected that were put in the
// quarantine directly (no dedup key, as an entry older than the duplicate window looks): the
// answer is INVALID_ARGUMENT with the violations, and the quarantine holds exactly what it held,
// the entry itself still there, with no second entry made by the redrive.
func TestFailedRedriveChangesNothing(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		entry *hookstreamv1.QuarantineEntry
	}{
		{name: "malformed_moveapi_body", entry: &hookstreamv1.QuarantineEntry{
			Provider: hookstreamv1.Provider_PROVIDER_MOVEAPI, Reason: hookstreamv1.QuarantineEntry_REASON_MALFORMED,
			Source: "/webhooks/moveapi", Raw: []byte(`not json`), Headers: map[string]string{ingest.HeaderWebhookID: "msg_bad"},
		}},
		{name: "invalid_mvmnt_delivery", entry: &hookstreamv1.QuarantineEntry{
			Provider: hookstreamv1.Provider_PROVIDER_MVMNT, Reason: hookstreamv1.QuarantineEntry_REASON_INVALID,
			Source: "/webhooks/mvmnt", Raw: []byte(`{"sentAt":"2025-01-15T14:30:00Z","events":[]}`),
		}},
		{name: "invalid_mvmnt_item", entry: &hookstreamv1.QuarantineEntry{
			Provider: hookstreamv1.Provider_PROVIDER_MVMNT, Reason: hookstreamv1.QuarantineEntry_REASON_INVALID,
			Source: "/webhooks/mvmnt", Raw: []byte(`{"event":"SHIPMENT_BOOKED","timestamp":"not a time","data":{}}`),
			ItemIndex: new(uint32), DeliverySentAt: timestamppb.Now(),
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := testenv.Services(t, testenv.OpenLog(t))
			ctx := context.Background()
			tt.entry.Id = uuid.Must(uuid.NewV7()).String()
			tt.entry.ReceivedAt = timestamppb.Now()
			put(t, env.Log, tt.entry)
			before := testenv.Entries(t, env.Log)
			for range 2 {
				_, err := env.Quarantine.RedriveEntry(ctx, &hookstreamv1.RedriveEntryRequest{Id: tt.entry.GetId()})
				if status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() == "" {
					t.Fatalf("redrive: got %v, want InvalidArgument naming the violations", err)
				}
			}
			if diff := cmp.Diff(before, testenv.Entries(t, env.Log), protocmp.Transform()); diff != "" {
				t.Errorf("quarantine after failed redrives (-before +after):\n%s", diff)
			}
			if n := len(testenv.Stored(t, env.Log)); n != 0 {
				t.Errorf("got %d events stored, want none", n)
			}
		})
	}
}

// TestRedrivenEntryLeaves redrives an entry valid now: the answer carries the entry with
// redriven_at and the receipts, the entry leaves the quarantine, and a second redrive is
// NOT_FOUND with nothing stored twice.
func TestRedrivenEntryLeaves(t *testing.T) {
	t.Parallel()
	env := testenv.Services(t, testenv.OpenLog(t))
	ctx := context.Background()
	id := uuid.Must(uuid.NewV7()).String()
	put(t, env.Log, &hookstreamv1.QuarantineEntry{
		Id: id, Reason: hookstreamv1.QuarantineEntry_REASON_INVALID, Provider: hookstreamv1.Provider_PROVIDER_LISTENER,
		Source: "/webhooks/v1/listeners/" + testenv.ListenerID + "/notify", Raw: []byte(`{"event_type":"incident.created"}`),
		Headers: map[string]string{ingest.HeaderListenerID: testenv.ListenerID, ingest.HeaderDedupID: "evt-9"}, ReceivedAt: timestamppb.Now(),
	})
	resp, err := env.Quarantine.RedriveEntry(ctx, &hookstreamv1.RedriveEntryRequest{Id: id})
	if err != nil {
		t.Fatalf("redrive: %v", err)
	}
	if resp.GetEntry().GetId() != id || resp.GetEntry().GetRedrivenAt() == nil || len(resp.GetEntry().GetRedriveReceipts()) != 1 {
		t.Errorf("got entry %v, want %s with redriven_at and one receipt", resp.GetEntry(), id)
	}
	if n := len(testenv.Entries(t, env.Log)); n != 0 {
		t.Errorf("got %d entries after the redrive, want 0", n)
	}
	if _, err := env.Quarantine.RedriveEntry(ctx, &hookstreamv1.RedriveEntryRequest{Id: id}); status.Code(err) != codes.NotFound {
		t.Errorf("second redrive: got %v, want NotFound", err)
	}
	if n := len(testenv.Stored(t, env.Log)); n != 1 {
		t.Errorf("got %d events stored, want 1", n)
	}
}

// TestDeleteAndPurge deletes one entry by id and purges by provider, reason and age, checking
// the count answered and what the quarantine still holds after each.
func TestDeleteAndPurge(t *testing.T) {
	t.Parallel()
	env := testenv.Services(t, testenv.OpenLog(t))
	ctx := context.Background()
	mk := func(p hookstreamv1.Provider, r hookstreamv1.QuarantineEntry_Reason) string {
		id := uuid.Must(uuid.NewV7()).String()
		put(t, env.Log, &hookstreamv1.QuarantineEntry{Id: id, Reason: r, Provider: p, Raw: []byte(`x`), ReceivedAt: timestamppb.Now()})
		return id
	}
	mv, inv, dead := hookstreamv1.Provider_PROVIDER_MOVEAPI, hookstreamv1.QuarantineEntry_REASON_INVALID, hookstreamv1.QuarantineEntry_REASON_DEAD_LETTER
	old := []string{mk(mv, inv), mk(mv, dead), mk(hookstreamv1.Provider_PROVIDER_MVMNT, inv), mk(hookstreamv1.Provider_PROVIDER_MVMNT, dead)}
	time.Sleep(10 * time.Millisecond)
	cut := timestamppb.Now()
	time.Sleep(10 * time.Millisecond)
	recent := mk(mv, inv)

	if resp, err := env.Quarantine.DeleteEntry(ctx, &hookstreamv1.DeleteEntryRequest{Id: old[0]}); err != nil || resp.GetEntry().GetId() != old[0] {
		t.Fatalf("delete: got %v %v, want entry %s", resp, err, old[0])
	}
	if _, err := env.Quarantine.DeleteEntry(ctx, &hookstreamv1.DeleteEntryRequest{Id: old[0]}); status.Code(err) != codes.NotFound {
		t.Errorf("delete again: got %v, want NotFound", err)
	}
	ids := func() []string {
		var out []string
		for _, e := range testenv.Entries(t, env.Log) {
			out = append(out, e.GetId())
		}
		return out
	}
	for _, tt := range []struct {
		name string
		req  *hookstreamv1.PurgeEntriesRequest
		want uint64
		left []string
	}{
		{name: "older_than_all", req: &hookstreamv1.PurgeEntriesRequest{QuarantinedBefore: timestamppb.New(time.Unix(1, 0))}, want: 0, left: []string{old[1], old[2], old[3], recent}},
		{name: "provider_and_reason", req: &hookstreamv1.PurgeEntriesRequest{Provider: mv, Reason: dead}, want: 1, left: []string{old[2], old[3], recent}},
		{name: "older_than_cut", req: &hookstreamv1.PurgeEntriesRequest{Reason: inv, QuarantinedBefore: cut}, want: 1, left: []string{old[3], recent}},
		{name: "everything", req: &hookstreamv1.PurgeEntriesRequest{}, want: 2, left: nil},
	} {
		// Sequential: each step purges from what the one before left.
		resp, err := env.Quarantine.PurgeEntries(ctx, tt.req)
		if err != nil || resp.GetPurged() != tt.want {
			t.Errorf("%s: got %v %v, want %d purged", tt.name, resp, err, tt.want)
		}
		if diff := cmp.Diff(tt.left, ids()); diff != "" {
			t.Errorf("%s: entries left (-want +got):\n%s", tt.name, diff)
		}
	}
}
