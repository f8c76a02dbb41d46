package stream_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	moveapiv1 "github.com/hookstream/hookstream/gen/hookstream/moveapi/v1"
	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/eventlog"
)

// fill appends n Move API events of about 600 bytes straight through the committer, 500 at a
// time.
func fill(b *testing.B, l *eventlog.Log, n int) {
	b.Helper()
	raw := make([]byte, 400)
	for i := 0; i < n; i += 500 {
		var events []*hookstreamv1.Event
		for j := i; j < min(i+500, n); j++ {
			events = append(events, &hookstreamv1.Event{
				Id: fmt.Sprint(j), Provider: hookstreamv1.Provider_PROVIDER_MOVEAPI, Type: "job.state.completed", Raw: raw, DedupKey: fmt.Sprint(j),
				Payload: &hookstreamv1.Event_Moveapi{Moveapi: &moveapiv1.Webhook{EventName: "job.state.completed", Timestamp: timestamppb.Now()}},
			})
		}
		res, err := l.AppendEvents(context.Background(), events...)
		if err != nil || res[0].Err != nil {
			b.Fatalf("fill: %v %v", err, res[0].Err)
		}
	}
}

// consume subscribes a new group from the start and acks n events, returning how long it took.
func consume(b *testing.B, e *env, group string, n, maxInFlight int) time.Duration {
	b.Helper()
	begin := time.Now()
	s := e.subscribe(b, &hookstreamv1.SubscribeRequest_Open{Group: group, Start: all(), MaxInFlight: uint32(maxInFlight)})
	got := 0
	for got < n {
		select {
		case m, ok := <-s.got:
			if !ok {
				b.Fatalf("stream ended after %d of %d", got, n)
			}
			evs := m.GetEvents().GetEvents()
			if len(evs) > 0 {
				s.ack(evs)
				got += len(evs)
			}
		case <-time.After(30 * time.Second):
			b.Fatalf("stalled after %d of %d", got, n)
		}
	}
	d := time.Since(begin)
	s.cancel()
	return d
}

// BenchmarkSubscribe measures events per second delivered to one Subscribe stream over gRPC on
// loopback and acknowledged, for a few max_in_flight settings.
func BenchmarkSubscribe(b *testing.B) {
	for _, inFlight := range []int{100, 1000} {
		b.Run(fmt.Sprintf("max_in_flight=%d", inFlight), func(b *testing.B) {
			e := startWith(b, func(o *eventlog.Options) { o.Durability = eventlog.DurabilityOS })
			fill(b, e.log, b.N)
			b.ResetTimer()
			d := consume(b, e, "bench", b.N, inFlight)
			b.ReportMetric(float64(b.N)/d.Seconds(), "events/s")
		})
	}
}

// BenchmarkReplay measures a new group catching up from the start of a 100,000-event stream.
func BenchmarkReplay(b *testing.B) {
	const n = 100_000
	e := startWith(b, func(o *eventlog.Options) { o.Durability = eventlog.DurabilityOS })
	fill(b, e.log, n)
	b.ResetTimer()
	var total time.Duration
	for i := range b.N {
		total += consume(b, e, fmt.Sprintf("replay-%d", i), n, 1000)
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "events/s")
	b.ReportMetric(total.Seconds()/float64(b.N), "s/replay")
}
