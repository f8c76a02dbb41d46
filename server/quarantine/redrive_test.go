package quarantine_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	moveapiv1 "github.com/hookstream/hookstream/gen/hookstream/moveapi/v1"
	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/ingest"
	"github.com/hookstream/hookstream/server/internal/testenv"
)

// subscriber is one Subscribe stream of a test, its events read as they come.
type subscriber struct {
	t   *testing.T
	st  hookstreamv1.EventService_SubscribeClient
	got chan *hookstreamv1.ReceivedEvent
}

// subscribe opens a Subscribe stream with open, ended when t ends.
func subscribe(t *testing.T, env *testenv.Env, open *hookstreamv1.SubscribeRequest_Open) *subscriber {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := env.Events.Subscribe(ctx, grpc.MaxCallRecvMsgSize(env.Log.MaxEventBytes()))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Open_{Open: open}}); err != nil {
		t.Fatal(err)
	}
	if first, err := st.Recv(); err != nil || first.GetSubscribed() == nil {
		t.Fatalf("subscribe: got %v %v, want subscribed", first, err)
	}
	s := &subscriber{t: t, st: st, got: make(chan *hookstreamv1.ReceivedEvent, 100)}
	go s.read()
	return s
}

// read passes the stream's events to got until the stream ends.
func (s *subscriber) read() {
	defer close(s.got)
	for m, err := s.st.Recv(); err == nil; m, err = s.st.Recv() {
		for _, ev := range m.GetEvents().GetEvents() {
			s.got <- ev
		}
	}
}

// next returns the next event, or fails after 10 s.
func (s *subscriber) next() *hookstreamv1.ReceivedEvent {
	s.t.Helper()
	select {
	case ev, ok := <-s.got:
		if !ok {
			s.t.Fatal("stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		s.t.Fatal("no event in 10 s")
	}
	return nil
}

func (s *subscriber) settle(st *hookstreamv1.SubscribeRequest_Settle) {
	s.t.Helper()
	if err := s.st.Send(&hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Settle_{Settle: st}}); err != nil {
		s.t.Fatal(err)
	}
}

func (s *subscriber) ack(ev *hookstreamv1.ReceivedEvent) {
	s.settle(&hookstreamv1.SubscribeRequest_Settle{AckIds: []string{ev.GetAckId()}})
}

func (s *subscriber) nack(ev *hookstreamv1.ReceivedEvent) {
	s.settle(&hookstreamv1.SubscribeRequest_Settle{Nacks: []*hookstreamv1.SubscribeRequest_Nack{{AckId: ev.GetAckId(), Delay: durationpb.New(10 * time.Millisecond)}}})
}

// sendMoveAPI stores a Move API webhook for job and returns the stored event.
func sendMoveAPI(t *testing.T, env *testenv.Env, job string) *hookstreamv1.Event {
	t.Helper()
	ctx := context.Background()
	w := &moveapiv1.Webhook{EventName: "job.state.completed", Timestamp: timestamppb.Now(), Detail: &moveapiv1.Detail{JobId: job}}
	resp, err := env.Webhooks.ReceiveMoveApiWebhook(ctx, &hookstreamv1.ReceiveMoveApiWebhookRequest{Webhook: w, WebhookId: "msg_" + job})
	if err != nil {
		t.Fatal(err)
	}
	e, err := env.Log.FindEvent(ctx, resp.GetReceipt().GetEventId())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// deadLetter waits until the quarantine holds one entry, and returns it.
func deadLetter(t *testing.T, env *testenv.Env) *hookstreamv1.QuarantineEntry {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if entries := testenv.Entries(t, env.Log); len(entries) > 0 {
			if len(entries) != 1 || entries[0].GetReason() != hookstreamv1.QuarantineEntry_REASON_DEAD_LETTER {
				t.Fatalf("quarantine holds %v, want one dead letter", entries)
			}
			return entries[0]
		}
	}
	t.Fatal("no dead letter in 10 s")
	return nil
}

// TestRedriveGoesBackToItsGroup has two groups receive event E: a acks it, b nacks it until it
// is a dead letter. Redriven, E goes back to b alone, as the same event (id, sequence, typed
// payload), once however often the redrive is retried; a, an ephemeral subscription, a tail and
// the history never see it a second time. A later event F is the marker: each reader gets F
// next, so nothing else came before it.
func TestRedriveGoesBackToItsGroup(t *testing.T) {
	t.Parallel()
	env := testenv.Services(t, testenv.OpenLog(t))
	ctx := context.Background()
	a := subscribe(t, env, &hookstreamv1.SubscribeRequest_Open{Group: "a"})
	b := subscribe(t, env, &hookstreamv1.SubscribeRequest_Open{Group: "b", MaxDeliveries: 2})
	ephemeral := subscribe(t, env, &hookstreamv1.SubscribeRequest_Open{})
	tailCtx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	tail, err := env.Events.Tail(tailCtx, &hookstreamv1.TailRequest{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the tail's consumer exists before E is stored

	e := sendMoveAPI(t, env, "e")
	if got := a.next(); got.GetEvent().GetId() != e.GetId() {
		t.Fatalf("a got %s, want E %s", got.GetEvent().GetId(), e.GetId())
	} else {
		a.ack(got)
	}
	if got := ephemeral.next(); got.GetEvent().GetId() != e.GetId() {
		t.Fatalf("ephemeral got %s, want E %s", got.GetEvent().GetId(), e.GetId())
	} else {
		ephemeral.ack(got)
	}
	for range 2 {
		b.nack(b.next())
	}
	entry := deadLetter(t, env)
	if entry.GetConsumerGroup() != "b" || entry.GetEvent().GetId() != e.GetId() {
		t.Fatalf("dead letter of group %q event %s, want b and E %s", entry.GetConsumerGroup(), entry.GetEvent().GetId(), e.GetId())
	}

	resp, err := env.Quarantine.RedriveEntry(ctx, &hookstreamv1.RedriveEntryRequest{Id: entry.GetId()})
	if err != nil {
		t.Fatalf("redrive: %v", err)
	}
	wantReceipt := []*hookstreamv1.Receipt{{EventId: e.GetId(), Sequence: e.GetSequence(), Outcome: hookstreamv1.Receipt_OUTCOME_STORED}}
	if diff := cmp.Diff(wantReceipt, resp.GetReceipts(), protocmp.Transform()); diff != "" {
		t.Errorf("receipts (-want +got):\n%s", diff)
	}
	again := b.next()
	if diff := cmp.Diff(e, again.GetEvent(), protocmp.Transform()); diff != "" {
		t.Errorf("b got again (-want E +got):\n%s", diff)
	}
	if again.GetDeliveryAttempt() != 1 {
		t.Errorf("redriven delivery attempt %d, want 1", again.GetDeliveryAttempt())
	}
	b.ack(again)
	// Redriving the same entry again (a retry after a lost answer) delivers nothing twice.
	if res, err := env.Log.Redrive(ctx, entry); err != nil || !res.Duplicate {
		t.Errorf("second redrive: got %+v %v, want a duplicate", res, err)
	}

	f := sendMoveAPI(t, env, "f")
	for _, s := range []struct {
		name string
		sub  *subscriber
	}{{"a", a}, {"b", b}, {"ephemeral", ephemeral}} {
		if got := s.sub.next(); got.GetEvent().GetId() != f.GetId() {
			t.Errorf("%s got %s next, want F %s", s.name, got.GetEvent().GetId(), f.GetId())
		}
	}
	var tailed []string
	for len(tailed) < 2 {
		m, err := tail.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if m.GetEvent() != nil {
			tailed = append(tailed, m.GetEvent().GetId())
		}
	}
	if diff := cmp.Diff([]string{e.GetId(), f.GetId()}, tailed); diff != "" {
		t.Errorf("tailed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]*hookstreamv1.Event{e, f}, testenv.Stored(t, env.Log), protocmp.Transform()); diff != "" {
		t.Errorf("stored events (-want +got):\n%s", diff)
	}
	list, err := env.Events.ListEvents(ctx, &hookstreamv1.ListEventsRequest{})
	if err != nil || len(list.GetEvents()) != 2 {
		t.Errorf("ListEvents: got %v %v, want E and F", list, err)
	}
	if got, err := env.Events.GetEvent(ctx, &hookstreamv1.GetEventRequest{Id: e.GetId()}); err != nil || got.GetEvent().GetSequence() != e.GetSequence() {
		t.Errorf("GetEvent(E): got %v %v, want E at sequence %d", got, err, e.GetSequence())
	}
}

// TestRedriveWithoutItsGroup redrives dead letters whose group is not there, or is a group of the
// same name that does not select the event: the redrive fails with FAILED_PRECONDITION and
// changes nothing (the entry stays as it was, nothing is stored).
func TestRedriveWithoutItsGroup(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		group func(t *testing.T, env *testenv.Env) string
	}{
		{name: "never_existed", group: func(*testing.T, *testenv.Env) string { return "never" }},
		{name: "deleted", group: func(t *testing.T, env *testenv.Env) string {
			subscribe(t, env, &hookstreamv1.SubscribeRequest_Open{Group: "gone"}).st.CloseSend()
			if _, err := env.Events.DeleteGroup(context.Background(), &hookstreamv1.DeleteGroupRequest{Name: "gone"}); err != nil {
				t.Fatal(err)
			}
			return "gone"
		}},
		{name: "ephemeral_subscription", group: func(*testing.T, *testenv.Env) string { return "ephemeral-" + uuid.NewString() }},
		{name: "made_again_with_another_filter", group: func(t *testing.T, env *testenv.Env) string {
			mvmnt := &hookstreamv1.EventFilter{Providers: []hookstreamv1.Provider{hookstreamv1.Provider_PROVIDER_MVMNT}}
			subscribe(t, env, &hookstreamv1.SubscribeRequest_Open{Group: "again", Filter: mvmnt}).st.CloseSend()
			return "again"
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := testenv.Services(t, testenv.OpenLog(t))
			ev := &hookstreamv1.Event{
				Id: uuid.Must(uuid.NewV7()).String(), Provider: hookstreamv1.Provider_PROVIDER_MOVEAPI, Type: "job.state.completed",
				Raw: []byte(`{}`), Sequence: 3,
				Payload: &hookstreamv1.Event_Moveapi{Moveapi: &moveapiv1.Webhook{EventName: "job.state.completed", Timestamp: timestamppb.Now()}},
			}
			id := uuid.Must(uuid.NewV7()).String()
			put(t, env.Log, &hookstreamv1.QuarantineEntry{Id: id, Reason: hookstreamv1.QuarantineEntry_REASON_DEAD_LETTER, Provider: ev.Provider, Event: ev, ConsumerGroup: tt.group(t, env), DeliveryAttempts: 5, ReceivedAt: timestamppb.Now()})
			before := testenv.Entries(t, env.Log)
			_, err := env.Quarantine.RedriveEntry(context.Background(), &hookstreamv1.RedriveEntryRequest{Id: id})
			if status.Code(err) != codes.FailedPrecondition {
				t.Errorf("redrive: got %v, want FailedPrecondition", err)
			}
			if diff := cmp.Diff(before, testenv.Entries(t, env.Log), protocmp.Transform()); diff != "" {
				t.Errorf("quarantine after the failed redrive (-before +after):\n%s", diff)
			}
			if u := testenv.Usage(t, env.Log); u.Events != 0 {
				t.Errorf("the events stream holds %d messages, want none", u.Events)
			}
		})
	}
}

// TestRedriveAtTheLimit dead-letters the largest event the body limit allows (a listener body at
// the limit whose typed form is as large as can be) and redrives it: its group receives it again,
// whole.
func TestRedriveAtTheLimit(t *testing.T) {
	t.Parallel()
	env := testenv.Services(t, testenv.OpenLog(t))
	ctx := context.Background()
	body := testenv.ListenerBody(int(config.Default().HTTP.BodyLimit))
	s := subscribe(t, env, &hookstreamv1.SubscribeRequest_Open{Group: "big", MaxDeliveries: 1})
	receipts, err := env.Ingest.Ingest(ctx, ingest.Delivery{
		Provider: hookstreamv1.Provider_PROVIDER_LISTENER, Raw: body, ListenerID: testenv.ListenerID,
		Source: "/webhooks/v1/listeners/" + testenv.ListenerID + "/notify", ReceivedAt: time.Now(),
	})
	if err != nil {
		t.Fatalf("ingest %d bytes: %v", len(body), err)
	}
	s.nack(s.next())
	entry := deadLetter(t, env)
	// The answer carries the entry, its event whole: room for more than gRPC's default 4 MiB.
	if _, err := env.Quarantine.RedriveEntry(ctx, &hookstreamv1.RedriveEntryRequest{Id: entry.GetId()}, grpc.MaxCallRecvMsgSize(2*env.Log.MaxEventBytes())); err != nil {
		t.Fatalf("redrive: %v", err)
	}
	again := s.next()
	if again.GetEvent().GetId() != receipts[0].GetEventId() || !bytes.Equal(again.GetEvent().GetRaw(), body) || len(again.GetEvent().GetListener().GetBody().GetFields()["data"].GetListValue().GetValues()) == 0 {
		t.Errorf("got event %s with %d raw bytes, want %s with its %d bytes and typed body", again.GetEvent().GetId(), len(again.GetEvent().GetRaw()), receipts[0].GetEventId(), len(body))
	}
	s.ack(again)
}
