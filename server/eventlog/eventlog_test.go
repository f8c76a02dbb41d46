package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookstream/hookstream/server/eventlog"
	"github.com/hookstream/hookstream/server/internal/natstest"
)

func open(t *testing.T, o eventlog.Options) *eventlog.Log {
	t.Helper()
	if o.DataDir == "" && o.URL == "" {
		o.DataDir = t.TempDir()
	}
	l, err := eventlog.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func msg(subject, id, data string) *nats.Msg {
	m := nats.NewMsg(subject)
	if id != "" {
		m.Header.Set(jetstream.MsgIDHeader, id)
	}
	m.Data = []byte(data)
	return m
}

// externalServer starts a nats-server with JetStream listening on loopback, as a separate
// server the log connects to by URL.
func externalServer(t *testing.T) string {
	t.Helper()
	return natstest.Server(t).ClientURL()
}

// TestConcurrentAppendsWithDuplicates appends from 64 producers, a quarter of whose messages
// repeat a dedup key of another: every message gets its own outcome, each key is stored exactly
// once, and every producer sees the sequence its message is stored at.
func TestConcurrentAppendsWithDuplicates(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		opts     func(t *testing.T) eventlog.Options
		minBatch int
	}{
		{name: "embedded_always", opts: func(t *testing.T) eventlog.Options { return eventlog.Options{} }},
		{name: "embedded_os", opts: func(t *testing.T) eventlog.Options { return eventlog.Options{Durability: eventlog.DurabilityOS} }},
		{name: "external", opts: func(t *testing.T) eventlog.Options { return eventlog.Options{URL: externalServer(t)} }, minBatch: eventlog.DefaultMinBatch},
		{name: "external_batch_of_2", opts: func(t *testing.T) eventlog.Options { return eventlog.Options{URL: externalServer(t)} }, minBatch: 2},
		{name: "external_plain", opts: func(t *testing.T) eventlog.Options { return eventlog.Options{URL: externalServer(t)} }, minBatch: 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := tt.opts(t)
			l := open(t, o)
			if o.URL != "" {
				// The embedded server's commits are always plain publishes.
				l.Events().SetMinBatch(tt.minBatch)
			}
			const producers, perProducer = 64, 40
			type sent struct {
				key string
				res eventlog.Result
			}
			var mu sync.Mutex
			var all []sent
			var wg sync.WaitGroup
			for p := range producers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range perProducer {
						key := fmt.Sprintf("p%d-%d", p, i)
						if i%4 == 3 { // repeat a key another producer also sends
							key = fmt.Sprintf("p%d-%d", (p+1)%producers, i-1)
						}
						res, err := l.Events().Append(context.Background(), msg("hookstream.events.test.x", key, key))
						if err != nil {
							t.Errorf("append %s: %v", key, err)
							return
						}
						mu.Lock()
						all = append(all, sent{key, res[0]})
						mu.Unlock()
					}
				}()
			}
			wg.Wait()

			stream, err := l.JetStream().Stream(context.Background(), eventlog.EventsStream)
			if err != nil {
				t.Fatal(err)
			}
			info, err := stream.Info(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			seqOf := map[string]uint64{}
			for _, s := range all {
				if s.res.Err != nil {
					t.Fatalf("append %s: %v", s.key, s.res.Err)
				}
				if prev, ok := seqOf[s.key]; ok && prev != s.res.Sequence {
					t.Errorf("key %s answered with sequences %d and %d", s.key, prev, s.res.Sequence)
				}
				seqOf[s.key] = s.res.Sequence
			}
			if got, want := info.State.Msgs, uint64(len(seqOf)); got != want {
				t.Errorf("stream holds %d messages, want %d (one per key)", got, want)
			}
			dups := 0
			for _, s := range all {
				if s.res.Duplicate {
					dups++
				}
			}
			if got, want := dups, len(all)-len(seqOf); got != want {
				t.Errorf("%d appends answered as duplicates, want %d", got, want)
			}
			// Every key's sequence holds that key.
			for key, seq := range seqOf {
				m, err := stream.GetMsg(context.Background(), seq)
				if err != nil {
					t.Fatalf("get %d: %v", seq, err)
				}
				if string(m.Data) != key {
					t.Errorf("sequence %d holds %q, want %q", seq, m.Data, key)
				}
			}
		})
	}
}

func TestAppendAfterClose(t *testing.T) {
	t.Parallel()
	l, err := eventlog.Open(context.Background(), eventlog.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := l.Events().Append(context.Background(), msg("hookstream.events.test.x", "a", "a")); !errors.Is(err, eventlog.ErrClosed) {
		t.Errorf("append after close: got %v, want ErrClosed", err)
	}
}

// TestUnavailable checks that appends fail with ErrUnavailable, never success, when the server
// is gone.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	ns := natstest.Server(t)
	l := open(t, eventlog.Options{URL: ns.ClientURL()})
	if _, err := l.Events().Append(context.Background(), msg("hookstream.events.test.x", "a", "a")); err != nil {
		t.Fatal(err)
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	res, err := l.Events().Append(context.Background(), msg("hookstream.events.test.x", "b", "b"))
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res[0].Err, eventlog.ErrUnavailable) {
		t.Errorf("append with the server down: got %+v, want ErrUnavailable", res[0])
	}
}
