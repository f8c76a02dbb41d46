package eventlog

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestIsLogFault(t *testing.T) {
	t.Parallel()
	unavailable := func(err error) error { return fmt.Errorf("%w: publish: %w", ErrUnavailable, err) }
	apiErr := func(code jetstream.ErrorCode) error {
		return unavailable(&jetstream.APIError{Code: 503, ErrorCode: code, Description: "test"})
	}
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{name: "commit_timeout", err: unavailable(context.DeadlineExceeded), want: true},
		{name: "sync_failed", err: fmt.Errorf("%w: sync stream files: %w", ErrUnavailable, syscall.EIO), want: true},
		{name: "no_responders", err: unavailable(nats.ErrNoResponders), want: true},
		{name: "ack_timeout", err: unavailable(jetstream.ErrAsyncPublishTimeout), want: true},
		{name: "connection_closed", err: unavailable(nats.ErrConnectionClosed), want: true},
		{name: "storage_resources_exceeded", err: apiErr(errCodeStorageResourcesExceeded), want: true},
		{name: "account_resources_exceeded", err: apiErr(errCodeAccountResourcesExceeded), want: true},
		{name: "insufficient_resources", err: apiErr(errCodeInsufficientResources), want: true},
		{name: "jetstream_not_enabled", err: apiErr(errCodeNotEnabled), want: true},
		{name: "message_exceeds_stream_maximum", err: apiErr(10054), want: false},
		{name: "stream_store_failed", err: apiErr(10077), want: false},
		{name: "max_payload", err: unavailable(nats.ErrMaxPayload), want: false},
		{name: "bad_subject", err: unavailable(nats.ErrBadSubject), want: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := isLogFault(tt.err); got != tt.want {
				t.Errorf("isLogFault(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// TestMessageErrorKeepsLogHealthy checks that an append refused for its own sake (larger than
// the server's max_payload) does not make the log refuse the others.
func TestMessageErrorKeepsLogHealthy(t *testing.T) {
	t.Parallel()
	l := openAlways(t)
	// The committer sends what it is given: larger than max_payload, the server refuses it.
	big := make([]byte, entryBudget(l.bodyLimit)+1)
	if res := appendOne(t, l.events, EventsSubjectPrefix+".test.x", "big", big); !errors.Is(res.Err, ErrUnavailable) {
		t.Fatalf("append of %d bytes: got %+v, want an error", len(big), res)
	}
	if err := l.Healthy(); err != nil {
		t.Errorf("Healthy after a message was refused: got %v, want nil", err)
	}
	if res := appendOne(t, l.events, EventsSubjectPrefix+".test.x", "small", []byte("small")); res.Err != nil {
		t.Errorf("append after a message was refused: %v", res.Err)
	}
}

func TestHealthyAfterClose(t *testing.T) {
	t.Parallel()
	l, err := Open(context.Background(), DefaultOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Healthy(); err != nil {
		t.Errorf("Healthy of an open log: got %v, want nil", err)
	}
	l.Close()
	if err := l.Healthy(); !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrClosed) {
		t.Errorf("Healthy after Close: got %v, want ErrUnavailable and ErrClosed", err)
	}
}

// startNATS starts a nats-server with JetStream listening on 127.0.0.1:port (0: any) with its
// store in dir, shut down when t ends.
func startNATS(t *testing.T, port int, dir string) *server.Server {
	t.Helper()
	if port == 0 {
		port = server.RANDOM_PORT
	}
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoSigs: true, MaxPayload: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

// TestExternalServerDownRecovers stops the external server a log appends to: appends fail with
// ErrUnavailable, at once once the log knows it is failing, and succeed again by themselves when
// the server is back, with what was acknowledged before stored exactly once.
func TestExternalServerDownRecovers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ns := startNATS(t, 0, dir)
	port := ns.Addr().(*net.TCPAddr).Port
	o := DefaultOptions("")
	o.URL, o.Logger = ns.ClientURL(), testLogger(t)
	l, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })

	acked := map[string]uint64{}
	for n := range 5 {
		id := fmt.Sprint("before-", n)
		res, err := appendWithin(l.events, id, 15*time.Second)
		if err != nil {
			t.Fatalf("append %s: %v", id, err)
		}
		acked[id] = res.Sequence
	}

	ns.Shutdown()
	ns.WaitForShutdown()
	failed := []string{"down-0"}
	if _, err := appendWithin(l.events, "down-0", 15*time.Second); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("append with the server down: got %v, want ErrUnavailable", err)
	}
	if err := l.Healthy(); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Healthy with the server down: got %v, want ErrUnavailable", err)
	}
	for n := 1; n < 4; n++ {
		id := fmt.Sprint("down-", n)
		if _, err := appendWithin(l.events, id, 2*time.Second); !errors.Is(err, ErrUnavailable) {
			t.Errorf("append %s while the log is failing: got %v, want ErrUnavailable before the 2 s deadline", id, err)
		}
		failed = append(failed, id)
	}

	startNATS(t, port, dir)
	awaitRecovery(t, l, "the server came back", acked)
	for _, id := range failed {
		res, err := appendWithin(l.events, id, 15*time.Second)
		if err != nil {
			t.Fatalf("retry of %s: %v", id, err)
		}
		acked[id] = res.Sequence
	}
	checkStored(t, l.js, acked)
}
