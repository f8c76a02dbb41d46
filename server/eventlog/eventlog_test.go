package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/eventlog"
	"github.com/hookstream/hookstream/server/internal/natstest"
)

// open opens a log with the default options changed by set.
func open(t *testing.T, set func(*eventlog.Options)) *eventlog.Log {
	t.Helper()
	o := eventlog.DefaultOptions(t.TempDir())
	if set != nil {
		set(&o)
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

// external points the options at a separate nats-server started for t.
func external(t *testing.T) func(*eventlog.Options) {
	url := externalServer(t)
	return func(o *eventlog.Options) { o.URL = url }
}

// TestConcurrentAppendsWithDuplicates appends from 64 producers, a quarter of whose messages
// repeat a dedup key of another: every message gets its own outcome, each key is stored exactly
// once, and every producer sees the sequence its message is stored at.
func TestConcurrentAppendsWithDuplicates(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		opts     func(t *testing.T) func(*eventlog.Options)
		minBatch int
	}{
		{name: "embedded_always", opts: func(t *testing.T) func(*eventlog.Options) { return nil }},
		{name: "embedded_os", opts: func(t *testing.T) func(*eventlog.Options) {
			return func(o *eventlog.Options) { o.Durability = eventlog.DurabilityOS }
		}},
		{name: "external", opts: external, minBatch: eventlog.DefaultMinBatch},
		{name: "external_batch_of_2", opts: external, minBatch: 2},
		{name: "external_plain", opts: external, minBatch: 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var o eventlog.Options
			set := tt.opts(t)
			l := open(t, func(opts *eventlog.Options) {
				if set != nil {
					set(opts)
				}
				o = *opts
			})
			if o.URL != "" {
				// The embedded server's commits are always plain publishes.
				l.EventsCommitter().SetMinBatch(tt.minBatch)
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
						res, err := l.EventsCommitter().Append(context.Background(), msg("hookstream.events.test.x", key, key))
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
	l, err := eventlog.Open(context.Background(), eventlog.DefaultOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := l.EventsCommitter().Append(context.Background(), msg("hookstream.events.test.x", "a", "a")); !errors.Is(err, eventlog.ErrClosed) {
		t.Errorf("append after close: got %v, want ErrClosed", err)
	}
}

// TestUnavailable checks that appends fail with ErrUnavailable, never success, when the server
// is gone.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	ns := natstest.Server(t)
	l := open(t, func(o *eventlog.Options) { o.URL = ns.ClientURL() })
	if _, err := l.EventsCommitter().Append(context.Background(), msg("hookstream.events.test.x", "a", "a")); err != nil {
		t.Fatal(err)
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	res, err := l.EventsCommitter().Append(context.Background(), msg("hookstream.events.test.x", "b", "b"))
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res[0].Err, eventlog.ErrUnavailable) {
		t.Errorf("append with the server down: got %+v, want ErrUnavailable", res[0])
	}
}

// TestExternalMaxPayload refuses, at Open, an external server whose max_payload cannot hold the
// largest event of the body limit: every body the front door accepts must be storable.
func TestExternalMaxPayload(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		maxPayload int32
		bodyLimit  int64
		want       error
	}{
		{name: "nats_default_with_default_limit", maxPayload: 1 << 20, bodyLimit: 1 << 20, want: eventlog.ErrInvalidOptions},
		{name: "nats_default_with_small_limit", maxPayload: 1 << 20, bodyLimit: 100 << 10, want: nil},
		{name: "eight_mib_with_default_limit", maxPayload: 8 << 20, bodyLimit: 1 << 20, want: nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := eventlog.DefaultOptions("")
			o.URL = natstest.ServerWith(t, tt.maxPayload).ClientURL()
			o.BodyLimit = tt.bodyLimit
			l, err := eventlog.Open(context.Background(), o)
			if err == nil {
				l.Close()
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("Open with max_payload %d, body limit %d: got %v, want %v", tt.maxPayload, tt.bodyLimit, err, tt.want)
			}
		})
	}
}

func TestSubject(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ typ, want string }{
		{"job.state.completed", "hookstream.events.moveapi.job.state.completed"},
		{"SHIPMENT_DELIVERED", "hookstream.events.moveapi.SHIPMENT_DELIVERED"},
		{"", "hookstream.events.moveapi._"},
		{"a..b.", "hookstream.events.moveapi.a._.b._"},
		{"x y*>\t", "hookstream.events.moveapi.x_y___"},
		{"ünï.çødé", "hookstream.events.moveapi.ünï.çødé"},
	} {
		if got := eventlog.Subject(hookstreamv1.Provider_PROVIDER_MOVEAPI, tt.typ); got != tt.want {
			t.Errorf("Subject(%q) = %q, want %q", tt.typ, got, tt.want)
		}
	}
}

// TestDefaultsFromConfig opens a log with the configuration's defaults, the only place they live,
// and checks the streams carry them: the duplicate window is config's 48 h (it was 24 h in the
// log and 48 h in config before).
func TestDefaultsFromConfig(t *testing.T) {
	t.Parallel()
	d := config.Default()
	l := open(t, nil)
	for _, tt := range []struct {
		stream string
		maxAge time.Duration
	}{{eventlog.EventsStream, d.EventLog.MaxAge}, {eventlog.QuarantineStream, d.EventLog.QuarantineMaxAge}} {
		s, err := l.JetStream().Stream(context.Background(), tt.stream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.Duplicates != d.EventLog.DuplicateWindow || info.Config.MaxAge != tt.maxAge || int64(info.Config.MaxMsgSize) != eventlog.EventBudget(d.HTTP.BodyLimit)+64<<10 {
			t.Errorf("%s: duplicate window %v, max age %v, max message %d; want %v, %v and the body limit's budget", tt.stream, info.Config.Duplicates, info.Config.MaxAge, info.Config.MaxMsgSize, d.EventLog.DuplicateWindow, tt.maxAge)
		}
	}
	if _, err := eventlog.Open(context.Background(), eventlog.Options{DataDir: t.TempDir()}); !errors.Is(err, eventlog.ErrInvalidOptions) {
		t.Errorf("Open without the options' values: got %v, want ErrInvalidOptions (no defaults below config)", err)
	}
}

// TestClientListenerNeedsToken opens the embedded server's NATS listener: a client without the
// token cannot connect (so cannot publish forged events), one with it can; and a listener without
// a token is refused at Open.
func TestClientListenerNeedsToken(t *testing.T) {
	t.Parallel()
	l := open(t, func(o *eventlog.Options) { o.ClientAddr, o.ClientToken = "127.0.0.1:0", "s3cret-nats-token" })
	if nc, err := nats.Connect(l.ClientURL()); err == nil {
		nc.Close()
		t.Errorf("a client without the token connected")
	}
	nc, err := nats.Connect(l.ClientURL(), nats.Token("s3cret-nats-token"))
	if err != nil {
		t.Fatalf("a client with the token: %v", err)
	}
	nc.Close()
	o := eventlog.DefaultOptions(t.TempDir())
	o.ClientAddr = "127.0.0.1:0"
	if _, err := eventlog.Open(context.Background(), o); !errors.Is(err, eventlog.ErrInvalidOptions) {
		t.Errorf("a listener without a token: got %v, want ErrInvalidOptions", err)
	}
}
