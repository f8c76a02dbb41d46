package stream_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/eventlog"
	"github.com/hookstream/hookstream/server/internal/natstest"
)

// counts are the counts of a group that GetGroup reports.
type counts struct {
	Pending, InFlight, Redelivered, DeadLetters uint64
	Paused                                      bool
}

func countsOf(g *hookstreamv1.Group) counts {
	return counts{g.GetPendingEvents(), g.GetUnacknowledgedEvents(), g.GetRedeliveredEvents(), g.GetDeadLetters(), g.GetPaused()}
}

// waitCounts polls GetGroup until the group's counts are want (JetStream applies acks
// asynchronously), or fails after 10 s with the last difference; it returns the group.
func (e *env) waitCounts(t testing.TB, name string, want counts) *hookstreamv1.Group {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := e.client.GetGroup(context.Background(), &hookstreamv1.GetGroupRequest{Name: name})
		if err != nil {
			t.Fatalf("GetGroup %s: %v", name, err)
		}
		diff := cmp.Diff(want, countsOf(resp.GetGroup()))
		if diff == "" {
			return resp.GetGroup()
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s counts (-want +got):\n%s", name, diff)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *env) pause(t testing.TB, name string, until time.Time) *hookstreamv1.Group {
	t.Helper()
	req := &hookstreamv1.PauseGroupRequest{Name: name}
	if !until.IsZero() {
		req.Until = timestamppb.New(until)
	}
	resp, err := e.client.PauseGroup(context.Background(), req)
	if err != nil {
		t.Fatalf("PauseGroup %s: %v", name, err)
	}
	return resp.GetGroup()
}

func (e *env) resume(t testing.TB, name string) {
	t.Helper()
	if _, err := e.client.ResumeGroup(context.Background(), &hookstreamv1.ResumeGroupRequest{Name: name}); err != nil {
		t.Fatalf("ResumeGroup %s: %v", name, err)
	}
}

func nack(ev *hookstreamv1.ReceivedEvent) *hookstreamv1.SubscribeRequest_Settle {
	return &hookstreamv1.SubscribeRequest_Settle{Nacks: []*hookstreamv1.SubscribeRequest_Nack{{AckId: ev.GetAckId(), Delay: durationpb.New(50 * time.Millisecond)}}}
}

// TestGroupCounts follows one group through its life: 5 events stored while it is paused are
// pending; delivered ones are in flight until acked; a nacked one is redelivered and counted; one
// nacked past the maximum deliveries is a dead letter. Pauses keep more events from being
// delivered when credit frees up, so that each step has one outcome.
func TestGroupCounts(t *testing.T) {
	t.Parallel()
	e := start(t, t.TempDir())
	s := e.subscribe(t, &hookstreamv1.SubscribeRequest_Open{Group: "counts", Start: all(), MaxInFlight: 3, MaxDeliveries: 2, AckDeadline: durationpb.New(time.Hour)})
	g := e.pause(t, "counts", time.Time{})
	if !g.GetPaused() || g.GetPausedUntil() != nil || g.GetMaxDeliveries() != 2 || g.GetAckDeadline().AsDuration() != time.Hour {
		t.Errorf("paused group: got paused %v until %v, max deliveries %d, ack deadline %v; want paused until resumed, 2, 1h",
			g.GetPaused(), g.GetPausedUntil(), g.GetMaxDeliveries(), g.GetAckDeadline().AsDuration())
	}
	ids := e.send(t, "c", 5)
	e.waitCounts(t, "counts", counts{Pending: 5, Paused: true})

	e.resume(t, "counts")
	first := s.next(3, 10*time.Second)
	e.waitCounts(t, "counts", counts{Pending: 2, InFlight: 3})

	e.pause(t, "counts", time.Time{})
	s.ack(first[:1])
	e.waitCounts(t, "counts", counts{Pending: 2, InFlight: 2, Paused: true})

	e.resume(t, "counts")
	fourth := s.next(1, 10*time.Second)
	e.waitCounts(t, "counts", counts{Pending: 1, InFlight: 3})
	s.ack(first[2:3])
	last := s.next(1, 10*time.Second)
	g = e.waitCounts(t, "counts", counts{InFlight: 3})
	if g.GetDeliveredSequence() != 5 || g.GetAckFloorSequence() != 1 {
		t.Errorf("sequences: delivered %d, ack floor %d; want 5 and 1", g.GetDeliveredSequence(), g.GetAckFloorSequence())
	}
	want := []string{ids[0], ids[1], ids[2], ids[3], ids[4]}
	if diff := cmp.Diff(want, eventIDs(append(first, append(fourth, last...)...))); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}

	s.settle(nack(first[1]))
	again := s.next(1, 10*time.Second)
	if again[0].GetEvent().GetId() != ids[1] || again[0].GetDeliveryAttempt() != 2 {
		t.Fatalf("after a nack got %s attempt %d, want %s attempt 2", again[0].GetEvent().GetId(), again[0].GetDeliveryAttempt(), ids[1])
	}
	e.waitCounts(t, "counts", counts{InFlight: 3, Redelivered: 1})

	s.settle(nack(again[0])) // its third delivery is over max_deliveries: a dead letter
	e.waitCounts(t, "counts", counts{InFlight: 2, DeadLetters: 1})
	s.ack(append(fourth, last...))
	g = e.waitCounts(t, "counts", counts{DeadLetters: 1})
	if g.GetAckFloorSequence() != 5 {
		t.Errorf("ack floor %d once every event is settled, want 5", g.GetAckFloorSequence())
	}
	list, err := e.client.ListGroups(context.Background(), &hookstreamv1.ListGroupsRequest{})
	if err != nil || len(list.GetGroups()) != 1 || list.GetGroups()[0].GetDeadLetters() != 1 {
		t.Errorf("ListGroups: got %v %v, want the group with its dead letter", list, err)
	}
}

// TestResetGroup resets a group that has acknowledged every event to each kind of position: its
// open stream ends with ABORTED, and a new stream receives exactly the events from there.
func TestResetGroup(t *testing.T) {
	t.Parallel()
	e := start(t, t.TempDir())
	ids := e.send(t, "a", 2)
	time.Sleep(20 * time.Millisecond)
	between := time.Now()
	time.Sleep(20 * time.Millisecond)
	ids = append(ids, e.send(t, "b", 3)...)
	tests := []struct {
		name     string
		position *hookstreamv1.StartPosition
		want     []string
		before   uint64 // the delivered and ack floor sequences after the reset
	}{
		{"sequence", &hookstreamv1.StartPosition{Policy: hookstreamv1.StartPosition_POLICY_SEQUENCE, Sequence: 3}, ids[2:], 2},
		{"time", &hookstreamv1.StartPosition{Policy: hookstreamv1.StartPosition_POLICY_TIME, Time: timestamppb.New(between)}, ids[2:], 2},
		{"all", all(), ids, 0},
		{"new", &hookstreamv1.StartPosition{Policy: hookstreamv1.StartPosition_POLICY_NEW}, nil, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			group := "reset-" + tt.name
			open := &hookstreamv1.SubscribeRequest_Open{Group: group, Start: all(), MaxInFlight: 10, AckDeadline: durationpb.New(time.Minute)}
			s := e.subscribe(t, open)
			s.ack(s.next(5, 10*time.Second))
			e.waitCounts(t, group, counts{})

			resp, err := e.client.ResetGroup(context.Background(), &hookstreamv1.ResetGroupRequest{Name: group, Position: tt.position})
			if err != nil {
				t.Fatalf("ResetGroup: %v", err)
			}
			if got := resp.GetGroup().GetPendingEvents(); got != uint64(len(tt.want)) {
				t.Errorf("pending after the reset: got %d, want %d", got, len(tt.want))
			}
			if g := resp.GetGroup(); g.GetDeliveredSequence() != tt.before || g.GetAckFloorSequence() != tt.before {
				t.Errorf("sequences after the reset: delivered %d, ack floor %d; want both %d", g.GetDeliveredSequence(), g.GetAckFloorSequence(), tt.before)
			}
			for range s.got { // the stream ends
			}
			if status.Code(s.err) != codes.Aborted {
				t.Errorf("open stream ended with %v, want Aborted", s.err)
			}

			again := e.subscribe(t, open)
			if len(tt.want) > 0 {
				got := again.next(len(tt.want), 10*time.Second)
				if diff := cmp.Diff(tt.want, eventIDs(got)); diff != "" {
					t.Errorf("events after the reset (-want +got):\n%s", diff)
				}
				again.ack(got)
			}
			again.none(time.Second)
		})
	}
}

// TestPauseGroup pauses a group with an open stream, until resumed and until a time: events
// stored meanwhile are pending and not delivered, and all of them arrive after the pause.
func TestPauseGroup(t *testing.T) {
	t.Parallel()
	e := start(t, t.TempDir())
	tests := []struct {
		name  string
		until time.Duration // 0: until ResumeGroup
	}{
		{"until_resumed", 0},
		{"until_a_time", 6 * time.Second}, // room for the sends and checks below on a loaded machine
	}
	for _, tt := range tests {
		// One after the other: each group starts with new events only, and would take the other's.
		t.Run(tt.name, func(t *testing.T) {
			group := "pause-" + tt.name
			s := e.subscribe(t, &hookstreamv1.SubscribeRequest_Open{Group: group})
			var until time.Time
			if tt.until > 0 {
				until = time.Now().Add(tt.until)
			}
			if g := e.pause(t, group, until); !g.GetPaused() || (tt.until > 0 && !g.GetPausedUntil().AsTime().Equal(until)) {
				t.Errorf("paused: got paused %v until %v, want until %v", g.GetPaused(), g.GetPausedUntil(), until)
			}
			ids := e.send(t, group, 3)
			e.waitCounts(t, group, counts{Pending: 3, Paused: true})
			s.none(time.Second)
			if tt.until == 0 {
				e.resume(t, group)
			}
			got := s.next(3, 10*time.Second)
			if diff := cmp.Diff(ids, eventIDs(got)); diff != "" {
				t.Errorf("events after the pause (-want +got):\n%s", diff)
			}
			s.ack(got)
			e.waitCounts(t, group, counts{})
		})
	}
}

// TestGroupAdminErrors calls every group RPC for a group that does not exist (also once
// deleted) and with requests that are not valid.
func TestGroupAdminErrors(t *testing.T) {
	t.Parallel()
	e := start(t, t.TempDir())
	e.subscribe(t, &hookstreamv1.SubscribeRequest_Open{Group: "deleted"}).cancel()
	if _, err := e.client.DeleteGroup(context.Background(), &hookstreamv1.DeleteGroupRequest{Name: "deleted"}); err != nil {
		t.Fatalf("DeleteGroup: %v", err)
	}
	e.subscribe(t, &hookstreamv1.SubscribeRequest_Open{Group: "kept"})
	ctx := context.Background()
	c := e.client
	call := map[string]func(name string) error{
		"get": func(n string) error { _, err := c.GetGroup(ctx, &hookstreamv1.GetGroupRequest{Name: n}); return err },
		"reset": func(n string) error {
			_, err := c.ResetGroup(ctx, &hookstreamv1.ResetGroupRequest{Name: n, Position: all()})
			return err
		},
		"pause": func(n string) error {
			_, err := c.PauseGroup(ctx, &hookstreamv1.PauseGroupRequest{Name: n})
			return err
		},
		"resume": func(n string) error {
			_, err := c.ResumeGroup(ctx, &hookstreamv1.ResumeGroupRequest{Name: n})
			return err
		},
		"delete": func(n string) error {
			_, err := c.DeleteGroup(ctx, &hookstreamv1.DeleteGroupRequest{Name: n})
			return err
		},
	}
	for name, f := range call {
		for _, group := range []string{"never", "deleted"} {
			if err := f(group); status.Code(err) != codes.NotFound {
				t.Errorf("%s %s: got %v, want NotFound", name, group, err)
			}
		}
		if err := f("a.b"); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s with a bad name: got %v, want InvalidArgument", name, err)
		}
	}
	invalid := []struct {
		name string
		call func() error
	}{
		{"reset_without_position", func() error {
			_, err := c.ResetGroup(ctx, &hookstreamv1.ResetGroupRequest{Name: "kept"})
			return err
		}},
		{"reset_without_policy", func() error {
			_, err := c.ResetGroup(ctx, &hookstreamv1.ResetGroupRequest{Name: "kept", Position: &hookstreamv1.StartPosition{}})
			return err
		}},
		{"reset_to_sequence_0", func() error {
			_, err := c.ResetGroup(ctx, &hookstreamv1.ResetGroupRequest{Name: "kept", Position: &hookstreamv1.StartPosition{Policy: hookstreamv1.StartPosition_POLICY_SEQUENCE}})
			return err
		}},
		{"pause_until_the_past", func() error {
			_, err := c.PauseGroup(ctx, &hookstreamv1.PauseGroupRequest{Name: "kept", Until: timestamppb.New(time.Now().Add(-time.Minute))})
			return err
		}},
	}
	for _, tt := range invalid {
		if err := tt.call(); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: got %v, want InvalidArgument", tt.name, err)
		}
	}
	if g := e.waitCounts(t, "kept", counts{}); g.GetName() != "kept" {
		t.Errorf("the valid group after the refused calls: %v", g)
	}
}

// TestResetKeepsSettings resets a paused group created with its own ack deadline, maximum
// deliveries and filter, on a log whose groups expire: every setting is the same after the reset,
// the group is still paused, and opening it with another filter is still refused.
func TestResetKeepsSettings(t *testing.T) {
	t.Parallel()
	e := startWith(t, func(o *eventlog.Options) { o.GroupIdleExpiry = time.Hour })
	filter := &hookstreamv1.EventFilter{Providers: []hookstreamv1.Provider{hookstreamv1.Provider_PROVIDER_MOVEAPI}, Types: []string{"job.>"}}
	open := &hookstreamv1.SubscribeRequest_Open{Group: "kept", Filter: filter, AckDeadline: durationpb.New(7 * time.Second), MaxDeliveries: 3}
	e.subscribe(t, open).cancel()
	e.pause(t, "kept", time.Time{})
	before := e.waitCounts(t, "kept", counts{Paused: true})
	resp, err := e.client.ResetGroup(context.Background(), &hookstreamv1.ResetGroupRequest{Name: "kept", Position: all()})
	if err != nil {
		t.Fatalf("ResetGroup: %v", err)
	}
	after := resp.GetGroup()
	settings := func(g *hookstreamv1.Group) []any {
		return []any{g.GetPaused(), g.GetPausedUntil() == nil, g.GetAckDeadline().AsDuration(), g.GetMaxDeliveries(), g.GetIdleExpiry().AsDuration()}
	}
	if diff := cmp.Diff([]any{true, true, 7 * time.Second, uint32(3), time.Hour}, settings(after)); diff != "" {
		t.Errorf("settings after the reset (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(settings(before), settings(after)); diff != "" {
		t.Errorf("settings changed by the reset (-before +after):\n%s", diff)
	}
	e.subscribe(t, open).cancel() // the same filter joins
	st, err := e.client.Subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st.Send(&hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Open_{Open: &hookstreamv1.SubscribeRequest_Open{Group: "kept"}}})
	if _, err := st.Recv(); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("open with another filter after the reset: got %v, want FailedPrecondition", err)
	}
}

// TestResetFromAnotherInstance resets a group through one hookstream instance while a stream of
// it is open on another sharing the event log: that stream ends with UNAVAILABLE at its next pull
// (or, had the reset fallen between two of its pulls, carries on from the new position), and a
// stream opened again reads from the new position.
func TestResetFromAnotherInstance(t *testing.T) {
	t.Parallel()
	ns := natstest.Server(t)
	a := startWith(t, func(o *eventlog.Options) { o.URL = ns.ClientURL() })
	b := startWith(t, func(o *eventlog.Options) { o.URL = ns.ClientURL() })
	ids := a.send(t, "x", 3)
	open := &hookstreamv1.SubscribeRequest_Open{Group: "shared", Start: all(), AckDeadline: durationpb.New(time.Minute)}
	s := b.subscribe(t, open)
	s.ack(s.next(3, 10*time.Second))
	a.waitCounts(t, "shared", counts{})

	if _, err := a.client.ResetGroup(context.Background(), &hookstreamv1.ResetGroupRequest{Name: "shared", Position: &hookstreamv1.StartPosition{Policy: hookstreamv1.StartPosition_POLICY_SEQUENCE, Sequence: 2}}); err != nil {
		t.Fatalf("ResetGroup: %v", err)
	}
	var carried []*hookstreamv1.ReceivedEvent
	timeout := time.After(10 * time.Second)
	for ended := false; !ended; {
		select {
		case m, ok := <-s.got:
			if !ok {
				ended = true
				break
			}
			carried = append(carried, m.GetEvents().GetEvents()...)
			if len(carried) == 2 {
				s.ack(carried)
				ended = true
			}
		case <-timeout:
			t.Fatalf("the other instance's stream neither ended nor carried on within 10 s (got %d events)", len(carried))
		}
	}
	switch {
	case len(carried) == 2:
		t.Log("the other instance's stream carried on from the new position")
		if diff := cmp.Diff(ids[1:], eventIDs(carried)); diff != "" {
			t.Errorf("the stream carried on with (-want +got):\n%s", diff)
		}
	case status.Code(s.err) != codes.Unavailable || len(carried) != 0:
		t.Fatalf("the other instance's stream ended with %v after %d events, want Unavailable and none", s.err, len(carried))
	default:
		t.Log("the other instance's stream ended with UNAVAILABLE")
		again := b.subscribe(t, open)
		if diff := cmp.Diff(ids[1:], eventIDs(again.next(2, 10*time.Second))); diff != "" {
			t.Errorf("events after subscribing again (-want +got):\n%s", diff)
		}
	}
}
