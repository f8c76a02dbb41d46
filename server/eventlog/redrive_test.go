package eventlog_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	moveapiv1 "github.com/hookstream/hookstream/gen/hookstream/moveapi/v1"
	mvmntv1 "github.com/hookstream/hookstream/gen/hookstream/mvmnt/v1"
	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/eventlog"
	"github.com/hookstream/hookstream/server/internal/natstest"
)

const moveapiSubject = eventlog.EventsSubjectPrefix + ".moveapi.>"

// appendEvent stores a Move API event and returns it as the log reads it back.
func appendEvent(t *testing.T, l *eventlog.Log) *hookstreamv1.Event {
	t.Helper()
	ctx := context.Background()
	e := &hookstreamv1.Event{
		Id: uuid.Must(uuid.NewV7()).String(), Provider: hookstreamv1.Provider_PROVIDER_MOVEAPI, Type: "job.state.completed",
		DedupKey: uuid.NewString(), Raw: []byte(`{}`),
		Payload: &hookstreamv1.Event_Moveapi{Moveapi: &moveapiv1.Webhook{EventName: "job.state.completed", Timestamp: timestamppb.Now()}},
	}
	res, err := l.AppendEvents(ctx, e)
	if err == nil {
		err = res[0].Err
	}
	if err != nil {
		t.Fatal(err)
	}
	stored, err := l.FindEvent(ctx, e.GetId())
	if err != nil {
		t.Fatal(err)
	}
	return stored
}

func deadLetterOf(e *hookstreamv1.Event, group string) *hookstreamv1.QuarantineEntry {
	return &hookstreamv1.QuarantineEntry{
		Id: uuid.Must(uuid.NewV7()).String(), Reason: hookstreamv1.QuarantineEntry_REASON_DEAD_LETTER,
		Provider: e.GetProvider(), Event: e, ConsumerGroup: group, DeliveryAttempts: 5,
	}
}

// fetchOne fetches the next event of c, acknowledges it and returns it with its stream sequence.
func fetchOne(t *testing.T, c *eventlog.Consumer) *eventlog.Delivery {
	t.Helper()
	b, err := c.Fetch(1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := <-b.Deliveries()
	if !ok {
		t.Fatalf("no event in 5 s (%v)", b.Err())
	}
	if err := d.Ack(); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestRedriveToGroupWithoutRedriveSubject redrives to a group that an older hookstream made,
// whose filter lacks its redrive subject: opening the group with another filter leaves it as it
// was, opening it with its own filter adds the subject, and so does a redrive to a group not
// opened since. Either way the group receives the event first delivered, then the redriven copy:
// the same event with its first sequence.
func TestRedriveToGroupWithoutRedriveSubject(t *testing.T) {
	t.Parallel()
	for _, opened := range []bool{true, false} {
		name := map[bool]string{true: "opened_first", false: "redriven_to_first"}[opened]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			l := open(t, nil)
			ctx := context.Background()
			js := l.JetStream()
			old := jetstream.ConsumerConfig{
				Durable: "group-old", AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
				FilterSubjects: []string{moveapiSubject}, MaxDeliver: -1, Metadata: map[string]string{"max_deliveries": "5"},
			}
			if _, err := js.CreateConsumer(ctx, eventlog.EventsStream, old); err != nil {
				t.Fatal(err)
			}
			cc := eventlog.ConsumerConfig{Subjects: []string{moveapiSubject}, Start: eventlog.Start{Policy: hookstreamv1.StartPosition_POLICY_ALL}, AckWait: time.Minute, MaxDeliveries: 5}
			other := cc
			other.Subjects = []string{eventlog.EventsSubjectPrefix + ".mvmnt.>"}
			if _, err := l.OpenGroup(ctx, "old", other); !errors.Is(err, eventlog.ErrGroupMismatch) {
				t.Fatalf("open with another filter: got %v, want ErrGroupMismatch", err)
			}
			if got := filter(t, js, "group-old"); !slices.Equal(got, []string{moveapiSubject}) {
				t.Errorf("after a mismatched open the filter is %v, want it unchanged", got)
			}
			e := appendEvent(t, l)
			want := []string{moveapiSubject, eventlog.RedriveSubjectPrefix + ".old"}
			var c *eventlog.Consumer
			var err error
			if opened {
				if c, err = l.OpenGroup(ctx, "old", cc); err != nil {
					t.Fatal(err)
				}
				if got := filter(t, js, "group-old"); !slices.Equal(got, want) {
					t.Errorf("opened, the filter is %v, want %v", got, want)
				}
			}
			if res, err := l.Redrive(ctx, deadLetterOf(e, "old")); err != nil || res.Duplicate || res.Sequence != e.GetSequence()+1 {
				t.Fatalf("redrive: got %+v %v, want stored after E", res, err)
			}
			if !slices.Equal(filter(t, js, "group-old"), want) {
				t.Errorf("filter %v, want %v", filter(t, js, "group-old"), want)
			}
			if !opened {
				if c, err = l.OpenGroup(ctx, "old", cc); err != nil {
					t.Fatal(err)
				}
			}
			first, again := fetchOne(t, c), fetchOne(t, c)
			if diff := cmp.Diff(e, first.Event, protocmp.Transform()); diff != "" {
				t.Errorf("first delivery (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(e, again.Event, protocmp.Transform()); diff != "" || again.Sequence != e.GetSequence()+1 || again.Attempt != 1 {
				t.Errorf("redriven delivery at %d attempt %d, want at %d attempt 1 (-want +got):\n%s", again.Sequence, again.Attempt, e.GetSequence()+1, diff)
			}
		})
	}
}

func filter(t *testing.T, js jetstream.JetStream, consumer string) []string {
	t.Helper()
	c, err := js.Consumer(context.Background(), eventlog.EventsStream, consumer)
	if err != nil {
		t.Fatal(err)
	}
	return c.CachedInfo().Config.FilterSubjects
}

// TestRedriveRefused redrives what cannot go back to a group: nothing is stored.
func TestRedriveRefused(t *testing.T) {
	t.Parallel()
	l := open(t, nil)
	ctx := context.Background()
	if _, err := l.OpenGroup(ctx, "g", eventlog.ConsumerConfig{Subjects: []string{moveapiSubject}, Start: eventlog.Start{Policy: hookstreamv1.StartPosition_POLICY_NEW}, AckWait: time.Minute, MaxDeliveries: 5}); err != nil {
		t.Fatal(err)
	}
	e := appendEvent(t, l)
	t.Cleanup(func() { // after the subtests
		if u, err := l.Usage(ctx); err != nil || u.Events != 1 {
			t.Errorf("the events stream holds %d messages (%v), want E alone", u.Events, err)
		}
	})
	invalid := deadLetterOf(e, "g")
	mvmnt := &hookstreamv1.Event{
		Id: uuid.Must(uuid.NewV7()).String(), Provider: hookstreamv1.Provider_PROVIDER_MVMNT, Type: "SHIPMENT_BOOKED",
		Payload: &hookstreamv1.Event_Mvmnt{Mvmnt: &mvmntv1.Event{Event: "SHIPMENT_BOOKED"}},
	}
	invalid.Reason = hookstreamv1.QuarantineEntry_REASON_INVALID
	for _, tt := range []struct {
		name  string
		entry *hookstreamv1.QuarantineEntry
		want  error
	}{
		{name: "not_a_dead_letter", entry: invalid, want: eventlog.ErrNotDeadLetter},
		{name: "without_its_event", entry: deadLetterOf(nil, "g"), want: eventlog.ErrNotDeadLetter},
		{name: "no_such_group", entry: deadLetterOf(e, "h"), want: eventlog.ErrGroupNotFound},
		{name: "group_selects_other_events", entry: deadLetterOf(mvmnt, "g"), want: eventlog.ErrGroupMismatch},
		{name: "no_group", entry: deadLetterOf(e, ""), want: eventlog.ErrGroupNotFound},
		{name: "not_a_subject_token", entry: deadLetterOf(e, "g.>"), want: eventlog.ErrGroupNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := l.Redrive(ctx, tt.entry); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// TestRedriveOnEachServer redrives on the embedded server, an external one and a 3-node cluster
// with 3 replicas: groups a and b both acknowledged E, E is redriven to b, then F is stored;
// a receives F next, b the redriven E and then F.
func TestRedriveOnEachServer(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		set  func(t *testing.T) func(*eventlog.Options)
	}{
		{name: "embedded", set: func(*testing.T) func(*eventlog.Options) { return nil }},
		{name: "external", set: external},
		{name: "cluster", set: func(t *testing.T) func(*eventlog.Options) {
			c := natstest.StartCluster(t, 3)
			return func(o *eventlog.Options) { o.URL, o.Replicas = c.URLs(), 3 }
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := open(t, tt.set(t))
			ctx := context.Background()
			cc := eventlog.ConsumerConfig{Subjects: []string{moveapiSubject}, Start: eventlog.Start{Policy: hookstreamv1.StartPosition_POLICY_ALL}, AckWait: time.Minute, MaxDeliveries: 5}
			groups := map[string]*eventlog.Consumer{}
			for _, name := range []string{"a", "b"} {
				c, err := l.OpenGroup(ctx, name, cc)
				if err != nil {
					t.Fatal(err)
				}
				groups[name] = c
			}
			e := appendEvent(t, l)
			for _, c := range groups {
				fetchOne(t, c)
			}
			if _, err := l.Redrive(ctx, deadLetterOf(e, "b")); err != nil {
				t.Fatalf("redrive: %v", err)
			}
			f := appendEvent(t, l)
			got := map[string][]string{}
			for name, c := range groups {
				for range map[string]int{"a": 1, "b": 2}[name] {
					got[name] = append(got[name], fetchOne(t, c).Event.GetId())
				}
			}
			want := map[string][]string{"a": {f.GetId()}, "b": {e.GetId(), f.GetId()}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("delivered after the redrive (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRedriveUnavailable redrives while the server is down: the error wraps ErrUnavailable.
func TestRedriveUnavailable(t *testing.T) {
	t.Parallel()
	ns := natstest.Server(t)
	l := open(t, func(o *eventlog.Options) { o.URL = ns.ClientURL() })
	ctx := context.Background()
	if _, err := l.OpenGroup(ctx, "g", eventlog.ConsumerConfig{Subjects: []string{moveapiSubject}, Start: eventlog.Start{Policy: hookstreamv1.StartPosition_POLICY_ALL}, AckWait: time.Minute, MaxDeliveries: 5}); err != nil {
		t.Fatal(err)
	}
	e := appendEvent(t, l)
	ns.Shutdown()
	ns.WaitForShutdown()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := l.Redrive(ctx, deadLetterOf(e, "g")); !errors.Is(err, eventlog.ErrUnavailable) {
		t.Errorf("redrive with the server down: got %v, want ErrUnavailable", err)
	}
}
