package stream_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
)

const (
	moveapi  = hookstreamv1.Provider_PROVIDER_MOVEAPI
	movement = hookstreamv1.Provider_PROVIDER_MOVEMENT
	mvmnt    = hookstreamv1.Provider_PROVIDER_MVMNT
	listener = hookstreamv1.Provider_PROVIDER_LISTENER
)

// patternEvents are stored once for every case of TestTypePatterns.
var patternEvents = []struct {
	provider hookstreamv1.Provider
	typ      string
}{
	{mvmnt, "SHIPMENT_CREATED"},
	{mvmnt, "SHIPMENT_DELIVERED"},
	{mvmnt, "CARRIER_UPDATED"},
	{mvmnt, "CARRIER_CONTACT_UPDATED"},
	{moveapi, "job.state.started"},
	{moveapi, "job.state.completed"},
	{moveapi, "ugc.media.uploaded"},
	{movement, "call.finished"},
	{movement, "call.started"},
	{movement, "text_message.received"},
	{listener, "incident.opened"},
	{listener, "incident.closed"},
	{listener, "SHIPMENT_CREATED"},
}

// appendPatternEvents stores patternEvents and returns "provider/type" by event id.
func (e *env) appendPatternEvents(t testing.TB) map[string]string {
	t.Helper()
	names := map[string]string{}
	var events []*hookstreamv1.Event
	for i, pe := range patternEvents {
		id := uuid.Must(uuid.NewV7()).String()
		names[id] = fmt.Sprintf("%s/%s", pe.provider, pe.typ)
		events = append(events, &hookstreamv1.Event{Id: id, Provider: pe.provider, Type: pe.typ, DedupKey: fmt.Sprint(i), Raw: []byte(`{}`)})
	}
	res, err := e.log.AppendEvents(context.Background(), events...)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	return names
}

// TestTypePatterns checks, per provider, that a type pattern (prefix patterns included) selects
// exactly the events it names over ListEvents, Tail and a Subscribe group, and that the group
// acks all it receives with nothing redelivered and nothing left pending.
func TestTypePatterns(t *testing.T) {
	t.Parallel()
	e := start(t, t.TempDir())
	names := e.appendPatternEvents(t)
	for _, tt := range []struct {
		name      string
		providers []hookstreamv1.Provider
		types     []string
		want      []string
	}{
		{"mvmnt_prefix", []hookstreamv1.Provider{mvmnt}, []string{"SHIPMENT_*"}, []string{"PROVIDER_MVMNT/SHIPMENT_CREATED", "PROVIDER_MVMNT/SHIPMENT_DELIVERED"}},
		{"mvmnt_prefix_any_provider", nil, []string{"SHIPMENT_*"}, []string{"PROVIDER_MVMNT/SHIPMENT_CREATED", "PROVIDER_MVMNT/SHIPMENT_DELIVERED"}},
		{"mvmnt_prefix_inner", []hookstreamv1.Provider{mvmnt}, []string{"CARRIER_CONTACT_*"}, []string{"PROVIDER_MVMNT/CARRIER_CONTACT_UPDATED"}},
		{"mvmnt_prefix_and_exact", []hookstreamv1.Provider{mvmnt}, []string{"SHIPMENT_*", "SHIPMENT_CREATED", "CARRIER_UPDATED"}, []string{"PROVIDER_MVMNT/SHIPMENT_CREATED", "PROVIDER_MVMNT/SHIPMENT_DELIVERED", "PROVIDER_MVMNT/CARRIER_UPDATED"}},
		{"moveapi_token", []hookstreamv1.Provider{moveapi}, []string{"job.state.*"}, []string{"PROVIDER_MOVEAPI/job.state.started", "PROVIDER_MOVEAPI/job.state.completed"}},
		{"moveapi_rest", []hookstreamv1.Provider{moveapi}, []string{"ugc.>"}, []string{"PROVIDER_MOVEAPI/ugc.media.uploaded"}},
		{"movement_token", []hookstreamv1.Provider{movement}, []string{"call.*"}, []string{"PROVIDER_MOVEMENT/call.finished", "PROVIDER_MOVEMENT/call.started"}},
		{"listener_token", []hookstreamv1.Provider{listener}, []string{"incident.*"}, []string{"PROVIDER_LISTENER/incident.opened", "PROVIDER_LISTENER/incident.closed"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			filter := &hookstreamv1.EventFilter{Providers: tt.providers, Types: tt.types}
			want := append([]string(nil), tt.want...)
			sort.Strings(want)
			check := func(how string, ids []string) {
				t.Helper()
				var got []string
				for _, id := range ids {
					got = append(got, names[id])
				}
				sort.Strings(got)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s: events (-want +got):\n%s", how, diff)
				}
			}
			check("list_events", e.listAll(t, filter))
			check("tail", e.tailN(t, filter, len(want)))

			group := "g_" + tt.name
			s := e.subscribe(t, &hookstreamv1.SubscribeRequest_Open{Group: group, Filter: filter, Start: all(), AckDeadline: durationpb.New(time.Second)})
			got := s.next(len(want), 5*time.Second)
			check("subscribe", eventIDs(got))
			for _, ev := range got {
				if ev.GetDeliveryAttempt() != 1 {
					t.Errorf("event %s: got attempt %d, want 1", names[ev.GetEvent().GetId()], ev.GetDeliveryAttempt())
				}
			}
			s.ack(got)
			s.none(1500 * time.Millisecond) // past the ack deadline: nothing comes back
			g := e.groupNames(t)[group]
			if g.GetPendingEvents() != 0 || g.GetUnacknowledgedEvents() != 0 {
				t.Errorf("group after acking: got pending %d unacknowledged %d, want 0 0", g.GetPendingEvents(), g.GetUnacknowledgedEvents())
			}
		})
	}
}

// TestBadTypePatterns checks that patterns that cannot be matched are refused with
// INVALID_ARGUMENT by ListEvents, Tail and Subscribe.
func TestBadTypePatterns(t *testing.T) {
	t.Parallel()
	e := start(t, t.TempDir())
	for _, tt := range []struct {
		name      string
		providers []hookstreamv1.Provider
		pattern   string
	}{
		{"empty", nil, ""},
		{"leading_star", []hookstreamv1.Provider{mvmnt}, "*FOO"},
		{"inner_star", []hookstreamv1.Provider{mvmnt}, "SHIP*MENT"},
		{"double_star", []hookstreamv1.Provider{mvmnt}, "SHIPMENT_**"},
		{"prefix_not_last", []hookstreamv1.Provider{moveapi}, "job.sta*.started"},
		{"prefix_matches_nothing", []hookstreamv1.Provider{mvmnt}, "NOSUCH_*"},
		{"prefix_moveapi", []hookstreamv1.Provider{moveapi}, "job.state.comp*"},
		{"prefix_listener", []hookstreamv1.Provider{listener}, "incident.op*"},
		{"prefix_of_no_documented_type", nil, "job.state.comp*"},
		{"rest_not_last", nil, "job.>.x"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			filter := &hookstreamv1.EventFilter{Providers: tt.providers, Types: []string{tt.pattern}}
			if _, err := e.client.ListEvents(context.Background(), &hookstreamv1.ListEventsRequest{Filter: filter}); status.Code(err) != codes.InvalidArgument {
				t.Errorf("ListEvents: got %v, want InvalidArgument", err)
			}
			tail, err := e.client.Tail(context.Background(), &hookstreamv1.TailRequest{Filter: filter})
			if err == nil {
				_, err = tail.Recv()
			}
			if status.Code(err) != codes.InvalidArgument {
				t.Errorf("Tail: got %v, want InvalidArgument", err)
			}
			st, err := e.client.Subscribe(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Send(&hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Open_{Open: &hookstreamv1.SubscribeRequest_Open{Filter: filter}}}); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Recv(); status.Code(err) != codes.InvalidArgument {
				t.Errorf("Subscribe: got %v, want InvalidArgument", err)
			}
		})
	}
}

// listAll returns the ids of every event ListEvents lists for filter, in pages of 2.
func (e *env) listAll(t testing.TB, filter *hookstreamv1.EventFilter) []string {
	t.Helper()
	var ids []string
	req := &hookstreamv1.ListEventsRequest{PageSize: 2, Filter: filter}
	for range 100 {
		page, err := e.client.ListEvents(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range page.GetEvents() {
			ids = append(ids, ev.GetId())
		}
		if page.GetNextPageToken() == "" {
			return ids
		}
		req.PageToken = page.GetNextPageToken()
	}
	t.Fatal("ListEvents did not end")
	return nil
}

// tailN tails filter from the first event and returns the ids of the events received until n
// arrived and then 500 ms passed (so that one too many is seen).
func (e *env) tailN(t testing.TB, filter *hookstreamv1.EventFilter, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tail, err := e.client.Tail(ctx, &hookstreamv1.TailRequest{Filter: filter, Start: all()})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 100)
	go func() {
		defer close(got)
		for {
			m, err := tail.Recv()
			if err != nil {
				return
			}
			if ev := m.GetEvent(); ev != nil {
				got <- ev.GetId()
			}
		}
	}()
	var ids []string
	for len(ids) < n {
		id, ok := <-got
		if !ok {
			t.Fatalf("tail ended after %d of %d events", len(ids), n)
		}
		ids = append(ids, id)
	}
	extra := time.After(500 * time.Millisecond)
	for {
		select {
		case id, ok := <-got:
			if !ok {
				return ids
			}
			ids = append(ids, id)
		case <-extra:
			return ids
		}
	}
}
