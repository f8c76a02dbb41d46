package stream_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	moveapiv1 "github.com/hookstream/hookstream/gen/hookstream/moveapi/v1"
	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/eventlog"
	"github.com/hookstream/hookstream/server/ingest"
	"github.com/hookstream/hookstream/server/internal/natstest"
	"github.com/hookstream/hookstream/server/internal/testenv"
	"github.com/hookstream/hookstream/server/stream"
)

const listenerID = "0b6f7c1e-5a4d-4c3b-9a2e-1f0e9d8c7b6a"

type env struct {
	dir      string
	log      *eventlog.Log
	events   *stream.Service
	webhooks hookstreamv1.WebhookServiceClient
	client   hookstreamv1.EventServiceClient
	ingest   *ingest.Service
	stop     func()
}

// start runs the ingestion and event services over a real gRPC server on loopback, on an embedded
// event log in dir.
func start(t testing.TB, dir string) *env {
	t.Helper()
	return startWith(t, func(o *eventlog.Options) { o.DataDir = dir })
}

// startWith is start on an event log with the default options changed by set.
func startWith(t testing.TB, set func(*eventlog.Options)) *env {
	t.Helper()
	o := testenv.LogOptions(t, set)
	dir := o.DataDir
	l, err := eventlog.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	d := config.Default()
	in, err := ingest.New(ingest.Options{Log: l, BodyLimit: d.HTTP.BodyLimit, Listeners: map[string]ingest.Listener{listenerID: {DefaultType: "notification"}}})
	if err != nil {
		t.Fatal(err)
	}
	so := stream.OptionsFrom(d)
	so.Log, so.Heartbeat = l, 300*time.Millisecond
	ev, err := stream.New(so)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hookstreamv1.RegisterWebhookServiceServer(srv, in)
	hookstreamv1.RegisterEventServiceServer(srv, ev)
	go srv.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	e := &env{dir: dir, log: l, events: ev, ingest: in, webhooks: hookstreamv1.NewWebhookServiceClient(conn), client: hookstreamv1.NewEventServiceClient(conn)}
	e.stop = func() {
		once.Do(func() {
			conn.Close()
			ev.Drain()
			srv.GracefulStop() // streams end and release their events before the log closes
			l.Close()
		})
	}
	t.Cleanup(e.stop)
	return e
}

// send stores n Move API webhooks with distinct ids and returns their event ids in order.
func (e *env) send(t testing.TB, prefix string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		w := &moveapiv1.Webhook{EventName: "job.state.completed", Timestamp: timestamppb.Now(), Detail: &moveapiv1.Detail{JobId: fmt.Sprint(i)}}
		resp, err := e.webhooks.ReceiveMoveApiWebhook(context.Background(), &hookstreamv1.ReceiveMoveApiWebhookRequest{Webhook: w, WebhookId: fmt.Sprintf("%s-%d", prefix, i)})
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		ids = append(ids, resp.GetReceipt().GetEventId())
	}
	return ids
}

type sub struct {
	t      testing.TB
	stream hookstreamv1.EventService_SubscribeClient
	cancel context.CancelFunc
	got    chan *hookstreamv1.SubscribeResponse
	err    error // why the stream ended, once got is closed
}

func (e *env) subscribe(t testing.TB, open *hookstreamv1.SubscribeRequest_Open) *sub {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	// Room for the largest event (a body at the limit, typed): see eventlog.EventBudget.
	st, err := e.client.Subscribe(ctx, grpc.MaxCallRecvMsgSize(e.log.MaxEventBytes()))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Open_{Open: open}}); err != nil {
		t.Fatal(err)
	}
	first, err := st.Recv()
	if err != nil {
		cancel()
		t.Fatalf("subscribe: %v", err)
	}
	if first.GetSubscribed() == nil {
		t.Fatalf("first response %v, want subscribed", first)
	}
	s := &sub{t: t, stream: st, cancel: cancel, got: make(chan *hookstreamv1.SubscribeResponse, 1000)}
	go func() {
		defer close(s.got)
		for {
			m, err := st.Recv()
			if err != nil {
				s.err = err
				return
			}
			s.got <- m
		}
	}()
	t.Cleanup(cancel)
	return s
}

// next returns the next n events, skipping heartbeats, or fails after timeout.
func (s *sub) next(n int, timeout time.Duration) []*hookstreamv1.ReceivedEvent {
	s.t.Helper()
	var out []*hookstreamv1.ReceivedEvent
	deadline := time.After(timeout)
	for len(out) < n {
		select {
		case m, ok := <-s.got:
			if !ok {
				s.t.Fatalf("stream ended after %d of %d events", len(out), n)
			}
			out = append(out, m.GetEvents().GetEvents()...)
		case <-deadline:
			s.t.Fatalf("got %d events in %v, want %d", len(out), timeout, n)
		}
	}
	return out
}

// none checks that no event arrives for d.
func (s *sub) none(d time.Duration) {
	s.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-s.got:
			if evs := m.GetEvents().GetEvents(); len(evs) > 0 {
				s.t.Fatalf("got %d unexpected events, first %s attempt %d", len(evs), evs[0].GetEvent().GetId(), evs[0].GetDeliveryAttempt())
			}
		case <-deadline:
			return
		}
	}
}

func (s *sub) settle(st *hookstreamv1.SubscribeRequest_Settle) {
	s.t.Helper()
	if err := s.stream.Send(&hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Settle_{Settle: st}}); err != nil {
		s.t.Fatal(err)
	}
}

func (s *sub) ack(evs []*hookstreamv1.ReceivedEvent) {
	s.t.Helper()
	var ids []string
	for _, e := range evs {
		ids = append(ids, e.GetAckId())
	}
	s.settle(&hookstreamv1.SubscribeRequest_Settle{AckIds: ids})
}

func eventIDs(evs []*hookstreamv1.ReceivedEvent) []string {
	var ids []string
	for _, e := range evs {
		ids = append(ids, e.GetEvent().GetId())
	}
	return ids
}

func all() *hookstreamv1.StartPosition {
	return &hookstreamv1.StartPosition{Policy: hookstreamv1.StartPosition_POLICY_ALL}
}

func TestSubscribeDeliversExactlyWhatWasAppended(t *testing.T) {
	t.Parallel()
	e := start(t, t.TempDir())
	want := e.send(t, "a", 20)
	body, _ := structpb.NewStruct(map[string]any{"event_type": "incident.created"})
	if _, err := e.webhooks.NotifyListener(context.Background(), &hookstreamv1.NotifyListenerRequest{ListenerId: listenerID, Body: body, Raw: []byte(`{"event_type":"incident.created"}`)}); err != nil {
		t.Fatal(err)
	}
	s := e.subscribe(t, &hookstreamv1.SubscribeRequest_Open{Group: "g", Start: all()})
	got := s.next(21, 10*time.Second)
	s.ack(got)
	if ids := eventIDs(got[:20]); fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Errorf("event ids %v, want %v", ids, want)
	}
	for i, ev := range got {
		if ev.GetDeliveryAttempt() != 1 || ev.GetEvent().GetSequence() != uint64(i+1) {
			t.Errorf("event %d: attempt %d sequence %d, want 1 and %d", i, ev.GetDeliveryAttempt(), ev.GetEvent().GetSequence(), i+1)
		}
	}
	last := got[20].GetEvent()
	if last.GetListener().GetEventType() != "incident.created" || string(last.GetRaw()) != `{"event_type":"incident.created"}` {
		t.Errorf("listener event %v, want the typed notification with its raw JSON", last)
	}
	s.none(700 * time.Millisecond)
}

func TestRedeliveryAfterDeadline(t *testing.T) {
	t.Parallel()
	e := start(t, t.TempDir())
	e.send(t, "a", 1)
	s := e.subscribe(t, &hookstreamv1.SubscribeRequest_Open{Group: "g", Start: all(), AckDeadline: durationpb.New(time.Second)})
	first := s.next(1, 5*time.Second)
	again := s.next(1, 5*time.Second)
	if again[0].GetEvent().GetId() != first[0].GetEvent().GetId() || again[0].GetDeliveryAttempt() != 2 {
		t.Fatalf("redelivery %v attempt %d, want the same event with attempt 2", again[0].GetEvent().GetId(), again[0].GetDeliveryAttempt())
	}
	s.ack(again)
	s.none(1500 * time.Millisecond)
}

func TestNackAndExtend(t *testing.T) {
	t.Parallel()
	e := start(t, t.TempDir())
	e.send(t, "a", 2)
	s := e.subscribe(t, &hookstreamv1.SubscribeRequest_Open{Group: "g", Start: all(), AckDeadline: durationpb.New(time.Second)})
	evs := s.next(2, 5*time.Second)
	nacked, extended := evs[0], evs[1]
	s.settle(&hookstreamv1.SubscribeRequest_Settle{Nacks: []*hookstreamv1.SubscribeRequest_Nack{{AckId: nacked.GetAckId(), Delay: durationpb.New(200 * time.Millisecond)}}})
	got := s.next(1, 5*time.Second)
	if got[0].GetEvent().GetId() != nacked.GetEvent().GetId() || got[0].GetDeliveryAttempt() != 2 {
		t.Errorf("after nack: got %s attempt %d, want %s attempt 2", got[0].GetEvent().GetId(), got[0].GetDeliveryAttempt(), nacked.GetEvent().GetId())
	}
	s.ack(got)
	// Keep the second one for 2.5 ack deadlines by extending it.
	for range 5 {
		time.Sleep(500 * time.Millisecond)
		s.settle(&hookstreamv1.SubscribeRequest_Settle{ExtendAckIds: []string{extended.GetAckId()}})
	}
	s.ack([]*hookstreamv1.ReceivedEvent{extended})
	s.none(1500 * time.Millisecond)
}

func TestDeadLetterAfterMaxDeliveries(t *testing.T) {
	t.Parallel()
	e := start(t, t.TempDir())
	ids := e.send(t, "a", 1)
	s := e.subscribe(t, &hookstreamv1.SubscribeRequest_Open{Group: "dl", Start: all(), MaxDeliveries: 2})
	for attempt := 1; attempt <= 2; attempt++ {
		ev := s.next(1, 5*time.Second)[0]
		if ev.GetDeliveryAttempt() != uint32(attempt) {
			t.Fatalf("attempt %d, want %d", ev.GetDeliveryAttempt(), attempt)
		}
		s.settle(&hookstreamv1.SubscribeRequest_Settle{Nacks: []*hookstreamv1.SubscribeRequest_Nack{{AckId: ev.GetAckId(), Delay: durationpb.New(10 * time.Millisecond)}}})
	}
	s.none(time.Second)
	entries := testenv.Entries(t, e.log)
	if len(entries) != 1 {
		t.Fatalf("quarantine holds %d entries, want the dead letter", len(entries))
	}
	entry := entries[0]
	if entry.GetReason() != hookstreamv1.QuarantineEntry_REASON_DEAD_LETTER || entry.GetEvent().GetId() != ids[0] || entry.GetConsumerGroup() != "dl" || entry.GetDeliveryAttempts() != 2 {
		t.Errorf("dead letter %v, want event %s of group dl after 2 attempts", entry, ids[0])
	}
}

func TestFlowControl(t *testing.T) {
	t.Parallel()
	e := start(t, t.TempDir())
	e.send(t, "a", 10)
	s := e.subscribe(t, &hookstreamv1.SubscribeRequest_Open{Group: "g", Start: all(), MaxInFlight: 3})
	first := s.next(3, 5*time.Second)
	s.none(1500 * time.Millisecond)
	s.ack(first[:2])
	more := s.next(2, 5*time.Second)
	s.none(500 * time.Millisecond)
	if more[0].GetEvent().GetSequence() != 4 {
		t.Errorf("after acking 2 of 3: got sequence %d, want 4", more[0].GetEvent().GetSequence())
	}
}

// TestGroupSharesWork runs two streams of one group: every event goes to exactly one of them.
func TestGroupSharesWork(t *testing.T) {
	t.Parallel()
	e := start(t, t.TempDir())
	want := e.send(t, "a", 200)
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	counts := make([]int, 2)
	for i := range 2 {
		s := e.subscribe(t, &hookstreamv1.SubscribeRequest_Open{Group: "shared", Start: all(), MaxInFlight: 10})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case m, ok := <-s.got:
					if !ok {
						return
					}
					evs := m.GetEvents().GetEvents()
					mu.Lock()
					for _, ev := range evs {
						seen[ev.GetEvent().GetId()]++
					}
					counts[i] += len(evs)
					n := len(seen)
					mu.Unlock()
					if len(evs) > 0 {
						time.Sleep(5 * time.Millisecond) // both streams get a share
						s.ack(evs)
					}
					if n == len(want) {
						return
					}
				case <-time.After(10 * time.Second):
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, id := range want {
		if seen[id] != 1 {
			t.Errorf("event %s delivered %d times, want once", id, seen[id])
		}
	}
	if counts[0] == 0 || counts[1] == 0 {
		t.Errorf("deliveries per stream %v: want both streams to share the work", counts)
	}
}

// TestDisconnectRedeliversOnlyItsEvents closes one stream of a group holding unacked events:
// those, and only those, go to the other stream, at once rather than after the deadline.
func TestDisconnectRedeliversOnlyItsEvents(t *testing.T) {
	t.Parallel()
	e := start(t, t.TempDir())
	e.send(t, "a", 4)
	a := e.subscribe(t, &hookstreamv1.SubscribeRequest_Open{Group: "g", Start: all(), MaxInFlight: 2, AckDeadline: durationpb.New(time.Minute)})
	held := a.next(2, 5*time.Second)
	b := e.subscribe(t, &hookstreamv1.SubscribeRequest_Open{Group: "g", Start: all(), MaxInFlight: 2, AckDeadline: durationpb.New(time.Minute)})
	others := b.next(2, 5*time.Second)
	b.ack(others)
	a.cancel()
	redelivered := b.next(2, 5*time.Second)
	got, wantIDs := eventIDs(redelivered), eventIDs(held)
	sort.Strings(got)
	sort.Strings(wantIDs)
	if fmt.Sprint(got) != fmt.Sprint(wantIDs) {
		t.Errorf("redelivered %v, want the disconnected stream's %v", got, wantIDs)
	}
	b.ack(redelivered)
	b.none(700 * time.Millisecond)
}

// TestRestartKeepsEventsAndPositions stops hookstream and starts it again on the same data
// directory: every acknowledged append is there and the group resumes after what it acked. The
// events it held unacked come back after their ack deadline (JetStream does not keep a nack across
// a restart of the server).
func TestRestartKeepsEventsAndPositions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := start(t, dir)
	ids := e.send(t, "a", 10)
	s := e.subscribe(t, &hookstreamv1.SubscribeRequest_Open{Group: "g", Start: all(), AckDeadline: durationpb.New(2 * time.Second)})
	s.ack(s.next(6, 5*time.Second)[:6])
	time.Sleep(200 * time.Millisecond) // acks are fire-and-forget; let them land
	s.cancel()
	e.stop()

	e2 := start(t, dir)
	s2 := e2.subscribe(t, &hookstreamv1.SubscribeRequest_Open{Group: "g", Start: all()})
	rest := s2.next(4, 10*time.Second)
	if got := eventIDs(rest); fmt.Sprint(got) != fmt.Sprint(ids[6:]) {
		t.Errorf("after restart the group got %v, want %v", got, ids[6:])
	}
	list, err := e2.client.ListEvents(context.Background(), &hookstreamv1.ListEventsRequest{PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetEvents()) != 10 {
		t.Errorf("after restart the log lists %d events, want 10", len(list.GetEvents()))
	}
}

func TestSubscribeErrors(t *testing.T) {
	t.Parallel()
	e := start(t, t.TempDir())
	e.subscribe(t, &hookstreamv1.SubscribeRequest_Open{Group: "g", Filter: &hookstreamv1.EventFilter{Types: []string{"job.>"}}})
	for _, tt := range []struct {
		name  string
		first *hookstreamv1.SubscribeRequest
		want  codes.Code
	}{
		{"settle_first", &hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Settle_{Settle: &hookstreamv1.SubscribeRequest_Settle{}}}, codes.InvalidArgument},
		{"empty_first", &hookstreamv1.SubscribeRequest{}, codes.InvalidArgument},
		{"bad_group", &hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Open_{Open: &hookstreamv1.SubscribeRequest_Open{Group: "a.b"}}}, codes.InvalidArgument},
		{"bad_pattern", &hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Open_{Open: &hookstreamv1.SubscribeRequest_Open{Filter: &hookstreamv1.EventFilter{Types: []string{"job.>.x"}}}}}, codes.InvalidArgument},
		{"deadline_too_short", &hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Open_{Open: &hookstreamv1.SubscribeRequest_Open{AckDeadline: durationpb.New(time.Millisecond)}}}, codes.InvalidArgument},
		{"sequence_zero", &hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Open_{Open: &hookstreamv1.SubscribeRequest_Open{Start: &hookstreamv1.StartPosition{Policy: hookstreamv1.StartPosition_POLICY_SEQUENCE}}}}, codes.InvalidArgument},
		{"unknown_format", &hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Open_{Open: &hookstreamv1.SubscribeRequest_Open{Format: 99}}}, codes.InvalidArgument},
		{"group_other_filter", &hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Open_{Open: &hookstreamv1.SubscribeRequest_Open{Group: "g"}}}, codes.FailedPrecondition},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st, err := e.client.Subscribe(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Send(tt.first); err != nil {
				t.Fatal(err)
			}
			_, err = st.Recv()
			if status.Code(err) != tt.want {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestHeartbeatAndDrain(t *testing.T) {
	t.Parallel()
	e := start(t, t.TempDir())
	s := e.subscribe(t, &hookstreamv1.SubscribeRequest_Open{})
	var heartbeat bool
	deadline := time.After(5 * time.Second)
	for !heartbeat {
		select {
		case m := <-s.got:
			heartbeat = m.GetHeartbeat() != nil
		case <-deadline:
			t.Fatal("no heartbeat on an idle stream")
		}
	}
	e.events.Drain()
	var draining bool
	for m := range s.got {
		draining = draining || m.GetDraining() != nil
	}
	if !draining {
		t.Error("stream ended without a draining message")
	}
	if _, err := s.stream.Recv(); err != io.EOF && err != nil && status.Code(err) == codes.Unknown {
		t.Errorf("stream end: %v", err)
	}
}

func TestTailGetList(t *testing.T) {
	t.Parallel()
	e := start(t, t.TempDir())
	ids := e.send(t, "a", 5)
	body, _ := structpb.NewStruct(map[string]any{"event_type": "x.y"})
	if _, err := e.webhooks.NotifyListener(context.Background(), &hookstreamv1.NotifyListenerRequest{ListenerId: listenerID, Body: body}); err != nil {
		t.Fatal(err)
	}

	for _, id := range ids {
		got, err := e.client.GetEvent(context.Background(), &hookstreamv1.GetEventRequest{Id: id})
		if err != nil || got.GetEvent().GetId() != id {
			t.Fatalf("GetEvent(%s): %v %v", id, got, err)
		}
	}
	if _, err := e.client.GetEvent(context.Background(), &hookstreamv1.GetEventRequest{Id: "0190b8f4-5f1e-7abc-8def-0123456789ab"}); status.Code(err) != codes.NotFound {
		t.Errorf("GetEvent of an unknown id: got %v, want NotFound", err)
	}

	// Pages of 2, moveapi only.
	listed := e.listAll(t, &hookstreamv1.EventFilter{Providers: []hookstreamv1.Provider{hookstreamv1.Provider_PROVIDER_MOVEAPI}})
	if fmt.Sprint(listed) != fmt.Sprint(ids) {
		t.Errorf("listed %v, want %v", listed, ids)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tail, err := e.client.Tail(ctx, &hookstreamv1.TailRequest{Filter: &hookstreamv1.EventFilter{Types: []string{"x.*"}}, Start: all()})
	if err != nil {
		t.Fatal(err)
	}
	for {
		m, err := tail.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if ev := m.GetEvent(); ev != nil {
			if ev.GetType() != "x.y" {
				t.Errorf("tail with filter x.* got type %q", ev.GetType())
			}
			break
		}
	}
}

// TestExternalServer runs hookstream's log on a separate nats-server the test starts on loopback,
// as a cluster deployment would: appends, a group, acks and a redelivery behave as embedded.
func TestExternalServer(t *testing.T) {
	t.Parallel()
	ns := natstest.Server(t)

	e := startWith(t, func(o *eventlog.Options) { o.URL = ns.ClientURL() })
	want := e.send(t, "ext", 10)
	s := e.subscribe(t, &hookstreamv1.SubscribeRequest_Open{Group: "ext", Start: all(), AckDeadline: durationpb.New(time.Second)})
	got := s.next(10, 10*time.Second)
	if fmt.Sprint(eventIDs(got)) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", eventIDs(got), want)
	}
	s.ack(got[1:])
	again := s.next(1, 5*time.Second)
	if again[0].GetEvent().GetId() != want[0] || again[0].GetDeliveryAttempt() != 2 {
		t.Errorf("redelivery %s attempt %d, want %s attempt 2", again[0].GetEvent().GetId(), again[0].GetDeliveryAttempt(), want[0])
	}
	s.ack(again)
	if dup := e.send(t, "ext", 1); dup[0] == "" {
		t.Error("resend got no receipt")
	}
	s.none(1500 * time.Millisecond)
}

// ingestListener stores a listener notification through the HTTP front door's path (a gRPC
// producer's message could not hold a typed body this large).
func (e *env) ingestListener(t testing.TB, body []byte) *hookstreamv1.Receipt {
	t.Helper()
	r, err := e.ingest.Ingest(context.Background(), ingest.Delivery{
		Provider: hookstreamv1.Provider_PROVIDER_LISTENER, Raw: body, ListenerID: listenerID,
		Source: "/webhooks/v1/listeners/" + listenerID + "/notify", ReceivedAt: time.Now(),
	})
	if err != nil {
		t.Fatalf("ingest %d bytes: %v", len(body), err)
	}
	return r[0]
}

// TestResponsesBoundedByBytes stores events of 300 KB and reads them with Subscribe and
// ListEvents: no message carries more than max_response_bytes of events unless it carries one
// event, and every event arrives once.
func TestResponsesBoundedByBytes(t *testing.T) {
	t.Parallel()
	e := start(t, t.TempDir())
	const n = 20
	for i := range n {
		e.ingestListener(t, testenv.ListenerBody(300<<10+i))
	}
	limit := config.Default().GRPC.MaxResponseBytes
	check := func(what string, events []*hookstreamv1.Event) {
		size := 0
		for _, ev := range events {
			size += proto.Size(ev)
		}
		if len(events) > 1 && size > limit {
			t.Errorf("%s: %d events of %d bytes in one message, want at most %d bytes unless alone", what, len(events), size, limit)
		}
	}
	s := e.subscribe(t, &hookstreamv1.SubscribeRequest_Open{Group: "big", Start: all(), MaxInFlight: 1000})
	seen := map[string]bool{}
	deadline := time.After(30 * time.Second)
	for len(seen) < n {
		select {
		case m := <-s.got:
			var events []*hookstreamv1.Event
			for _, ev := range m.GetEvents().GetEvents() {
				events = append(events, ev.GetEvent())
				seen[ev.GetEvent().GetId()] = true
			}
			check("Subscribe", events)
		case <-deadline:
			t.Fatalf("received %d of %d events", len(seen), n)
		}
	}
	listed := 0
	req := &hookstreamv1.ListEventsRequest{PageSize: 1000}
	for pages := 0; ; pages++ {
		resp, err := e.client.ListEvents(context.Background(), req, grpc.MaxCallRecvMsgSize(e.log.MaxEventBytes()))
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		check("ListEvents", resp.GetEvents())
		listed += len(resp.GetEvents())
		if resp.GetNextPageToken() == "" {
			break
		}
		req.PageToken = resp.GetNextPageToken()
	}
	if listed != n {
		t.Errorf("listed %d events, want %d", listed, n)
	}
}

// TestDeadLetterAtTheLimit dead-letters an event whose body is at the body limit and as large as
// it gets once typed: the dead letter is kept in the quarantine, holding the event.
func TestDeadLetterAtTheLimit(t *testing.T) {
	t.Parallel()
	e := start(t, t.TempDir())
	body := testenv.ListenerBody(int(config.Default().HTTP.BodyLimit))
	r := e.ingestListener(t, body)
	s := e.subscribe(t, &hookstreamv1.SubscribeRequest_Open{Group: "dl", Start: all(), MaxDeliveries: 1})
	ev := s.next(1, 10*time.Second)[0]
	s.settle(&hookstreamv1.SubscribeRequest_Settle{Nacks: []*hookstreamv1.SubscribeRequest_Nack{{AckId: ev.GetAckId(), Delay: durationpb.New(10 * time.Millisecond)}}})
	deadline := time.Now().Add(15 * time.Second)
	var entries []*hookstreamv1.QuarantineEntry
	for len(entries) == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		entries = testenv.Entries(t, e.log)
	}
	if len(entries) != 1 {
		t.Fatalf("quarantine holds %d entries, want the dead letter", len(entries))
	}
	got := entries[0]
	if got.GetReason() != hookstreamv1.QuarantineEntry_REASON_DEAD_LETTER || got.GetEvent().GetId() != r.GetEventId() || !bytes.Equal(got.GetEvent().GetRaw(), body) || len(got.GetRaw()) != 0 {
		t.Errorf("dead letter: reason %v event %s raw %d bytes (entry raw %d), want the event %s with its %d raw bytes once",
			got.GetReason(), got.GetEvent().GetId(), len(got.GetEvent().GetRaw()), len(got.GetRaw()), r.GetEventId(), len(body))
	}
}

// TestListEventsOnCluster lists every event through ListEvents on a real 3-node JetStream cluster
// with 3 replicas, also right after a node restarted: each page comes from direct gets by
// sequence, and a replica that lags is never taken for the end of the stream.
func TestListEventsOnCluster(t *testing.T) {
	t.Parallel()
	c := natstest.StartCluster(t, 3)
	e := startWith(t, func(o *eventlog.Options) { o.URL, o.Replicas = c.URLs(), 3 })
	c.WaitStream(eventlog.EventsStream)
	const n = 6000
	raw := []byte(`{}`)
	for i := 0; i < n; i += 500 {
		var events []*hookstreamv1.Event
		for j := i; j < i+500; j++ {
			events = append(events, &hookstreamv1.Event{
				Id: uuid.Must(uuid.NewV7()).String(), Provider: hookstreamv1.Provider_PROVIDER_MOVEAPI, Type: "job.state.completed",
				DedupKey: fmt.Sprint(j), Raw: raw,
				Payload: &hookstreamv1.Event_Moveapi{Moveapi: &moveapiv1.Webhook{EventName: "job.state.completed", Timestamp: timestamppb.Now()}},
			})
		}
		res, err := e.log.AppendEvents(context.Background(), events...)
		if err != nil || res[len(res)-1].Err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	list := func(what string) {
		t.Helper()
		seen := map[uint64]bool{}
		req := &hookstreamv1.ListEventsRequest{PageSize: 1000}
		for {
			resp, err := e.client.ListEvents(context.Background(), req)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			for _, ev := range resp.GetEvents() {
				if seen[ev.GetSequence()] {
					t.Fatalf("%s: sequence %d listed twice", what, ev.GetSequence())
				}
				seen[ev.GetSequence()] = true
			}
			if resp.GetNextPageToken() == "" {
				break
			}
			req.PageToken = resp.GetNextPageToken()
		}
		if len(seen) != n {
			t.Errorf("%s: listed %d events, want %d", what, len(seen), n)
		}
	}
	list("settled")
	c.Stop(1)
	c.Start(1)
	list("node 1 restarted")
	c.WaitStream(eventlog.EventsStream)
	list("node 1 caught up")
}

// TestConsumerGoneEndsStream deletes a subscription's consumer under it (as an in-process
// restart of JetStream loses an ephemeral one): the stream ends with UNAVAILABLE, so that the
// client subscribes again, instead of fetching from nothing for ever.
func TestConsumerGoneEndsStream(t *testing.T) {
	t.Parallel()
	ns := natstest.Server(t)
	e := startWith(t, func(o *eventlog.Options) { o.URL = ns.ClientURL() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := e.client.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.Send(&hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Open_{Open: &hookstreamv1.SubscribeRequest_Open{}}})
	first, err := st.Recv()
	if err != nil || first.GetSubscribed() == nil {
		t.Fatalf("subscribe: %v %v", first, err)
	}
	js := natstest.JetStream(t, ns.ClientURL())
	if err := js.DeleteConsumer(ctx, eventlog.EventsStream, first.GetSubscribed().GetGroup()); err != nil {
		t.Fatalf("delete the consumer %s: %v", first.GetSubscribed().GetGroup(), err)
	}
	for {
		_, err := st.Recv()
		if err == nil {
			continue // heartbeats
		}
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("stream ended with %v, want Unavailable", err)
		}
		return
	}
}

// consumers returns how many consumers the events stream has.
func consumers(t testing.TB, js jetstream.JetStream) int {
	t.Helper()
	info, err := js.Stream(context.Background(), eventlog.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	return info.CachedInfo().State.Consumers
}

// waitConsumers waits, at most 10 s, until the events stream has want consumers.
func waitConsumers(t testing.TB, js jetstream.JetStream, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := consumers(t, js)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the events stream has %d consumers, want %d", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCallsLeaveNoConsumers is the reproduction of the consumer lock-out: 1,010 listings of one
// event, 1,010 tails and 100 ephemeral subscriptions, one after the other, each ended by its
// client. The consumers of the tails and subscriptions are deleted as they end (long before the
// server's inactivity threshold would), listings make none, and afterwards a new group, a tail
// and a listing all work.
func TestCallsLeaveNoConsumers(t *testing.T) {
	t.Parallel()
	ns := natstest.Server(t)
	e := startWith(t, func(o *eventlog.Options) { o.URL = ns.ClientURL() })
	js := natstest.JetStream(t, ns.ClientURL())
	want := e.send(t, "a", 1)[0]
	const bound = 8 // consumers still being deleted by nats.go after a tail's fetch
	check := func(what string, i int) {
		t.Helper()
		if n := consumers(t, js); n > bound {
			t.Fatalf("after %d %s: the events stream has %d consumers, want at most %d", i, what, n, bound)
		}
	}

	for i := range 1010 {
		resp, err := e.client.ListEvents(context.Background(), &hookstreamv1.ListEventsRequest{PageSize: 1})
		if err != nil || len(resp.GetEvents()) != 1 {
			t.Fatalf("listing %d: %v %v", i, resp, err)
		}
	}
	check("listings", 1010)
	for i := range 1010 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		tail, err := e.client.Tail(ctx, &hookstreamv1.TailRequest{Start: all()})
		if err != nil {
			t.Fatal(err)
		}
		m, err := tail.Recv()
		if err != nil || m.GetEvent().GetId() != want {
			t.Fatalf("tail %d: got %v %v, want event %s", i, m, err, want)
		}
		cancel()
		if i%100 == 99 {
			check("tails", i+1)
		}
	}
	for i := range 100 {
		s := e.subscribe(t, &hookstreamv1.SubscribeRequest_Open{Start: all()})
		if got := s.next(1, 10*time.Second); got[0].GetEvent().GetId() != want {
			t.Fatalf("subscription %d: got %s, want %s", i, got[0].GetEvent().GetId(), want)
		}
		s.cancel()
		if i%10 == 9 {
			check("subscriptions", i+1)
		}
	}
	waitConsumers(t, js, 0)

	s := e.subscribe(t, &hookstreamv1.SubscribeRequest_Open{Group: "after", Start: all()})
	if got := s.next(1, 10*time.Second); got[0].GetEvent().GetId() != want {
		t.Errorf("new group: got %s, want %s", got[0].GetEvent().GetId(), want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tail, err := e.client.Tail(ctx, &hookstreamv1.TailRequest{Start: all()})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := tail.Recv(); err != nil || m.GetEvent().GetId() != want {
		t.Errorf("new tail: got %v %v, want event %s", m, err, want)
	}
	if resp, err := e.client.ListEvents(ctx, &hookstreamv1.ListEventsRequest{}); err != nil || len(resp.GetEvents()) != 1 {
		t.Errorf("listing: got %v %v, want the event", resp, err)
	}
}

// groupNames lists the names of the consumer groups.
func (e *env) groupNames(t testing.TB) map[string]*hookstreamv1.Group {
	t.Helper()
	resp, err := e.client.ListGroups(context.Background(), &hookstreamv1.ListGroupsRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*hookstreamv1.Group{}
	for _, g := range resp.GetGroups() {
		out[g.GetName()] = g
	}
	return out
}

// TestGroupIdleExpiry configures groups to expire after 2 s unread: a group whose last stream
// closed is deleted (polled, at most 20 s), a group with an open stream is kept, and the expired
// group can be subscribed again, anew.
func TestGroupIdleExpiry(t *testing.T) {
	t.Parallel()
	e := startWith(t, func(o *eventlog.Options) { o.GroupIdleExpiry = 2 * time.Second })
	e.send(t, "a", 1)
	kept := e.subscribe(t, &hookstreamv1.SubscribeRequest_Open{Group: "kept", Start: all()})
	kept.ack(kept.next(1, 10*time.Second))
	idle := e.subscribe(t, &hookstreamv1.SubscribeRequest_Open{Group: "idle", Start: all()})
	idle.ack(idle.next(1, 10*time.Second))
	if got := e.groupNames(t)["idle"].GetIdleExpiry().AsDuration(); got != 2*time.Second {
		t.Errorf("idle expiry listed %v, want 2s", got)
	}
	idle.cancel()

	deadline := time.Now().Add(20 * time.Second)
	for e.groupNames(t)["idle"] != nil {
		if time.Now().After(deadline) {
			t.Fatal("the group without streams still exists after 20 s, want it expired after 2 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if e.groupNames(t)["kept"] == nil {
		t.Error("the group with an open stream expired")
	}
	again := e.subscribe(t, &hookstreamv1.SubscribeRequest_Open{Group: "idle", Start: all()})
	if got := again.next(1, 10*time.Second); got[0].GetDeliveryAttempt() != 1 {
		t.Errorf("the expired group subscribed again: attempt %d, want 1 (a new group)", got[0].GetDeliveryAttempt())
	}
}

// TestGroupIdleExpiryOfExistingGroups creates a group under a log that keeps groups, then opens
// it under one whose groups expire after 2 s: the group takes the expiry in force, and expires.
func TestGroupIdleExpiryOfExistingGroups(t *testing.T) {
	t.Parallel()
	ns := natstest.Server(t)
	keeps := startWith(t, func(o *eventlog.Options) { o.URL, o.GroupIdleExpiry = ns.ClientURL(), 0 })
	old := keeps.subscribe(t, &hookstreamv1.SubscribeRequest_Open{Group: "old"})
	if got := keeps.groupNames(t)["old"]; got == nil || got.GetIdleExpiry() != nil {
		t.Fatalf("group created with no expiry: %v, want listed without idle_expiry", got)
	}
	old.cancel()

	expires := startWith(t, func(o *eventlog.Options) { o.URL, o.GroupIdleExpiry = ns.ClientURL(), 2*time.Second })
	expires.subscribe(t, &hookstreamv1.SubscribeRequest_Open{Group: "old"}).cancel()
	deadline := time.Now().Add(20 * time.Second)
	for expires.groupNames(t)["old"] != nil {
		if time.Now().After(deadline) {
			t.Fatal("the group opened under a 2 s expiry still exists after 20 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
