package stream_test

import (
	"context"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/internal/cetest"
)

// TestCloudEvents asks GetEvent, Tail and Subscribe (a group, a nack, acks) for an event of each
// provider as CloudEvents, and checks each against the spec's attributes and its envelope, which
// GetEvent still answers when no format is asked for.
func TestCloudEvents(t *testing.T) {
	t.Parallel()
	e := start(t, t.TempDir())
	ctx := context.Background()
	sent := cetest.Send(t, e.webhooks, e.client, listenerID)
	ce := hookstreamv1.EventFormat_EVENT_FORMAT_CLOUDEVENT

	envelopes := map[string]*hookstreamv1.Event{}
	for _, s := range sent {
		got, err := e.client.GetEvent(ctx, &hookstreamv1.GetEventRequest{Id: s.ID})
		if err != nil || got.GetEvent().GetId() != s.ID || got.GetCloudEvent() != nil {
			t.Fatalf("GetEvent(%s) without a format: %v %v, want the envelope alone", s.ID, got, err)
		}
		envelopes[s.ID] = got.GetEvent()
	}

	tailed := map[string]*pb.CloudEvent{}
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tail, err := e.client.Tail(tctx, &hookstreamv1.TailRequest{Start: all(), Format: ce})
	if err != nil {
		t.Fatal(err)
	}
	for len(tailed) < len(sent) {
		m, err := tail.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if m.GetEvent() != nil {
			t.Fatalf("tail asked for cloudevents sent an envelope: %v", m)
		}
		if c := m.GetCloudEvent(); c != nil {
			tailed[c.GetId()] = c
		}
	}
	cancel()

	// Each event is nacked on its first delivery, and acked on its second.
	sub := e.subscribe(t, &hookstreamv1.SubscribeRequest_Open{Group: "cloudevents", Start: all(), Format: ce})
	delivered := map[uint32]map[string]*pb.CloudEvent{1: {}, 2: {}}
	for attempt := uint32(1); attempt <= 2; attempt++ {
		evs := sub.next(len(sent), 10*time.Second)
		settle := &hookstreamv1.SubscribeRequest_Settle{}
		for _, ev := range evs {
			if ev.GetEvent() != nil || ev.GetDeliveryAttempt() != attempt {
				t.Fatalf("delivery %v, want a cloudevent alone, attempt %d", ev, attempt)
			}
			delivered[attempt][ev.GetCloudEvent().GetId()] = ev.GetCloudEvent()
			if attempt == 1 {
				settle.Nacks = append(settle.Nacks, &hookstreamv1.SubscribeRequest_Nack{AckId: ev.GetAckId(), Delay: durationpb.New(10 * time.Millisecond)})
			} else {
				settle.AckIds = append(settle.AckIds, ev.GetAckId())
			}
		}
		sub.settle(settle)
	}
	sub.none(500 * time.Millisecond)

	for _, s := range sent {
		t.Run(s.Name, func(t *testing.T) {
			t.Parallel()
			want := envelopes[s.ID]
			got, err := e.client.GetEvent(ctx, &hookstreamv1.GetEventRequest{Id: s.ID, Format: ce})
			if err != nil || got.GetEvent() != nil {
				t.Fatalf("GetEvent as a cloudevent: %v %v, want the cloudevent alone", got, err)
			}
			t.Run("get_event", func(t *testing.T) { cetest.Check(t, got.GetCloudEvent(), want, s, 0) })
			t.Run("tail", func(t *testing.T) { cetest.Check(t, tailed[s.ID], want, s, 0) })
			t.Run("subscribe", func(t *testing.T) { cetest.Check(t, delivered[1][s.ID], want, s, 1) })
			t.Run("subscribe_redelivered", func(t *testing.T) { cetest.Check(t, delivered[2][s.ID], want, s, 2) })
		})
	}
}

// TestUnknownFormatRefused: a format this server does not know is INVALID_ARGUMENT, never the
// envelope in its place.
func TestUnknownFormatRefused(t *testing.T) {
	t.Parallel()
	e := start(t, t.TempDir())
	id := e.send(t, "f", 1)[0]
	const unknown = hookstreamv1.EventFormat(99)
	if _, err := e.client.GetEvent(context.Background(), &hookstreamv1.GetEventRequest{Id: id, Format: unknown}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("GetEvent: got %v, want InvalidArgument", err)
	}
	tail, err := e.client.Tail(context.Background(), &hookstreamv1.TailRequest{Start: all(), Format: unknown})
	if err == nil {
		_, err = tail.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("Tail: got %v, want InvalidArgument", err)
	}
}
