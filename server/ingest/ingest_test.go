package ingest_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"

	moveapiv1 "github.com/hookstream/hookstream/gen/hookstream/moveapi/v1"
	movementv1 "github.com/hookstream/hookstream/gen/hookstream/movement/v1"
	mvmntv1 "github.com/hookstream/hookstream/gen/hookstream/mvmnt/v1"
	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/convert"
	"github.com/hookstream/hookstream/server/eventlog"
	"github.com/hookstream/hookstream/server/internal/testenv"
)

const listenerID = testenv.ListenerID

// setup runs a Service over a real gRPC server on loopback, appending to an embedded event log.
func setup(t *testing.T) (hookstreamv1.WebhookServiceClient, *eventlog.Log) {
	t.Helper()
	env := testenv.Services(t, testenv.OpenLog(t))
	return env.Webhooks, env.Log
}

// stored reads the event at seq from the log.
func stored(t *testing.T, l *eventlog.Log, seq uint64) *hookstreamv1.Event {
	t.Helper()
	for _, e := range testenv.Stored(t, l) {
		if e.GetSequence() == seq {
			return e
		}
	}
	t.Fatalf("no event at sequence %d", seq)
	return nil
}

// TestReceiveEachProvider sends each provider's sample over gRPC and reads the stored envelope
// back from the log; a resend is answered as a duplicate of the same sequence and not stored.
func TestReceiveEachProvider(t *testing.T) {
	t.Parallel()
	client, l := setup(t)
	ctx := context.Background()

	mv := &moveapiv1.Webhook{}
	mvRaw := testenv.Sample(t, "moveapi/ugc_job_state_completed.json", mv)
	mm := &movementv1.Webhook{}
	mmRaw := testenv.Sample(t, "movement/call_finished.json", mm)
	mt := &mvmntv1.Delivery{}
	mtRaw := testenv.Sample(t, "mvmnt/batch_mixed.json", mt)
	body, err := structpb.NewStruct(map[string]any{"event_type": "incident.created", "data": map[string]any{"id": "INC1"}})
	if err != nil {
		t.Fatal(err)
	}

	type sent struct {
		name     string
		send     func() ([]*hookstreamv1.Receipt, error)
		provider hookstreamv1.Provider
		types    []string
		raw      [][]byte // each event's
		dedup    []string
	}
	for _, tt := range []sent{
		{
			name: "moveapi",
			send: func() ([]*hookstreamv1.Receipt, error) {
				r, err := client.ReceiveMoveApiWebhook(ctx, &hookstreamv1.ReceiveMoveApiWebhookRequest{Webhook: mv, WebhookId: "msg_1", Raw: mvRaw})
				return []*hookstreamv1.Receipt{r.GetReceipt()}, err
			},
			provider: hookstreamv1.Provider_PROVIDER_MOVEAPI, types: []string{"ugc.job.state.completed"}, raw: [][]byte{mvRaw}, dedup: []string{"msg_1"},
		},
		{
			name: "movement",
			send: func() ([]*hookstreamv1.Receipt, error) {
				r, err := client.ReceiveMovementWebhook(ctx, &hookstreamv1.ReceiveMovementWebhookRequest{Webhook: mm, Raw: mmRaw})
				return []*hookstreamv1.Receipt{r.GetReceipt()}, err
			},
			provider: hookstreamv1.Provider_PROVIDER_MOVEMENT, types: []string{"call.finished"}, raw: [][]byte{mmRaw}, dedup: []string{"call.finished.1050"},
		},
		{
			name: "mvmnt_batch",
			send: func() ([]*hookstreamv1.Receipt, error) {
				r, err := client.ReceiveMvmntDelivery(ctx, &hookstreamv1.ReceiveMvmntDeliveryRequest{Delivery: mt, Raw: mtRaw})
				return r.GetReceipts(), err
			},
			provider: hookstreamv1.Provider_PROVIDER_MVMNT,
			types:    []string{"CUSTOMER_DELETED", "QUOTE_WON", "SHIPMENT_TELEPORTED", "LOCATION_UPDATED"},
			raw:      testenv.Items(t, mtRaw),
			dedup: []string{
				"CUSTOMER_DELETED/2b7e1516-28ae-42a6-abf7-158809cf4f3c/2025-03-02T07:59:58Z",
				"QUOTE_WON/3c8f2627-39bf-43b7-8c08-269910d05f4d/2025-03-02T07:59:59.5Z",
				"SHIPMENT_TELEPORTED/4d9a3738-4ac0-44c8-9d19-37aa21e16a5e/2025-03-02T08:00:00Z",
				"LOCATION_UPDATED/5eab4849-5bd1-45d9-8e2a-48bb32f27b6f/2025-03-02T08:00:00Z",
			},
		},
		{
			name: "listener_without_raw",
			send: func() ([]*hookstreamv1.Receipt, error) {
				_, err := client.NotifyListener(ctx, &hookstreamv1.NotifyListenerRequest{ListenerId: listenerID, Body: body, DedupId: "d-1"})
				return nil, err
			},
			provider: hookstreamv1.Provider_PROVIDER_LISTENER, types: []string{"incident.created"}, dedup: []string{listenerID + "/id:d-1"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			receipts, err := tt.send()
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			again, err := tt.send()
			if err != nil {
				t.Fatalf("resend: %v", err)
			}
			if tt.provider == hookstreamv1.Provider_PROVIDER_LISTENER {
				return // the listener contract's answer carries no receipt; see TestListener
			}
			if len(receipts) != len(tt.types) {
				t.Fatalf("got %d receipts, want %d", len(receipts), len(tt.types))
			}
			for i, r := range receipts {
				if r.GetDuplicate() {
					t.Errorf("receipt %d: first send answered as duplicate", i)
				}
				if !again[i].GetDuplicate() || again[i].GetSequence() != r.GetSequence() {
					t.Errorf("receipt %d of the resend: got %v, want a duplicate of sequence %d", i, again[i], r.GetSequence())
				}
				if r.GetOutcome() != hookstreamv1.Receipt_OUTCOME_STORED || again[i].GetOutcome() != hookstreamv1.Receipt_OUTCOME_DUPLICATE {
					t.Errorf("receipt %d: outcomes %v then %v, want stored then duplicate", i, r.GetOutcome(), again[i].GetOutcome())
				}
				e := stored(t, l, r.GetSequence())
				if e.GetId() != r.GetEventId() {
					t.Errorf("stored id %q, want %q", e.GetId(), r.GetEventId())
				}
				if e.GetProvider() != tt.provider || e.GetType() != tt.types[i] || e.GetDedupKey() != "grpc/"+tt.dedup[i] || e.GetSource() != "grpc" {
					t.Errorf("stored envelope %v/%q/%q/%q, want %v/%q/%q/grpc", e.GetProvider(), e.GetType(), e.GetDedupKey(), e.GetSource(), tt.provider, tt.types[i], tt.dedup[i])
				}
				if string(e.GetRaw()) != string(tt.raw[i]) {
					t.Errorf("stored raw %q, want the bytes sent %q", e.GetRaw(), tt.raw[i])
				}
				if e.GetPayload() == nil || e.GetReceivedAt() == nil {
					t.Errorf("stored event lacks payload or received_at: %v", e)
				}
			}
		})
	}
}

func TestListener(t *testing.T) {
	t.Parallel()
	client, l := setup(t)
	ctx := context.Background()
	body, _ := structpb.NewStruct(map[string]any{"ticket": 1})
	resp, err := client.NotifyListener(ctx, &hookstreamv1.NotifyListenerRequest{ListenerId: listenerID, Body: body})
	if err != nil {
		t.Fatal(err)
	}
	want := &hookstreamv1.NotifyListenerResponse{Message: "Event received successfully", Status: "RECEIVED"}
	if diff := cmp.Diff(want, resp, protocmp.Transform()); diff != "" {
		t.Errorf("response differs (-want +got):\n%s", diff)
	}
	e := stored(t, l, 1)
	if e.GetType() != "notification" || e.GetListener().GetListenerId() != listenerID {
		t.Errorf("stored type %q listener %q, want the default type and %s", e.GetType(), e.GetListener().GetListenerId(), listenerID)
	}
	// The raw JSON of a gRPC producer that sent none is the protojson of the body.
	back := &structpb.Struct{}
	if err := convert.Unmarshal(e.GetRaw(), back); err != nil || !proto.Equal(back, body) {
		t.Errorf("raw %q does not read back as the body: %v", e.GetRaw(), err)
	}

	_, err = client.NotifyListener(ctx, &hookstreamv1.NotifyListenerRequest{ListenerId: "5e1f0c4a-0000-4000-8000-000000000000", Body: body})
	if status.Code(err) != codes.NotFound {
		t.Errorf("unknown listener: got %v, want NotFound", err)
	}
}

// TestInvalidIsQuarantined sends a payload that breaks the schema: INVALID_ARGUMENT naming the
// field and rule, nothing stored as an event, the payload kept in the quarantine.
func TestInvalidIsQuarantined(t *testing.T) {
	t.Parallel()
	client, l := setup(t)
	raw := []byte(`{"sentAt":"2025-01-15T14:30:00Z","events":[]}`)
	d := &mvmntv1.Delivery{}
	if err := convert.Unmarshal(raw, d); err != nil {
		t.Fatal(err)
	}
	_, err := client.ReceiveMvmntDelivery(context.Background(), &hookstreamv1.ReceiveMvmntDeliveryRequest{Delivery: d, Raw: raw})
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("got %v, want InvalidArgument", err)
	}
	var fields []string
	for _, detail := range st.Details() {
		if br, ok := detail.(*errdetails.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				fields = append(fields, fv.GetField()+" "+fv.GetReason())
			}
		}
	}
	if diff := cmp.Diff([]string{"delivery.events repeated.min_items"}, fields); diff != "" {
		t.Errorf("violations (-want +got):\n%s", diff)
	}
	if n := len(testenv.Stored(t, l)); n != 0 {
		t.Errorf("events stream holds %d events, want 0", n)
	}
	entries := testenv.Entries(t, l)
	if len(entries) != 1 {
		t.Fatalf("quarantine holds %d entries, want 1", len(entries))
	}
	entry := entries[0]
	if entry.GetReason() != hookstreamv1.QuarantineEntry_REASON_INVALID || string(entry.GetRaw()) != string(raw) || len(entry.GetViolations()) != 1 {
		t.Errorf("quarantine entry %v, want the raw body with reason INVALID and its violation", entry)
	}
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	client, l := setup(t)
	l.Close()
	mv := &moveapiv1.Webhook{}
	raw := testenv.Sample(t, "moveapi/job_state_started.json", mv)
	_, err := client.ReceiveMoveApiWebhook(context.Background(), &hookstreamv1.ReceiveMoveApiWebhookRequest{Webhook: mv, WebhookId: "msg_x", Raw: raw})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("log closed: got %v, want Unavailable", err)
	}
}
