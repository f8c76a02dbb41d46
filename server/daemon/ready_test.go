package daemon_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/gateway"
	"github.com/hookstream/hookstream/server/internal/natstest"
	"github.com/hookstream/hookstream/server/internal/tmpfs"
)

// TestReadinessFollowsTheLog takes the event log's store away under a running daemon — the
// embedded server's disk fills, an external server goes away — and gives it back: /readyz and
// gRPC health say not ready while the log cannot take appends, webhooks are answered 503 with
// Retry-After before the log's 10 s commit timeout meanwhile, and readiness returns by itself;
// every webhook answered 2xx, and every retry of a refused one, is then stored exactly once,
// and nothing else (no probe) is.
func TestReadinessFollowsTheLog(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		// setup returns the configuration and the fault: fail takes the store away, recover
		// gives it back.
		setup func(t *testing.T, cfg *config.Config) (fail, recover func())
	}{
		{name: "embedded_disk_full", setup: diskFull},
		{name: "external_server_gone", setup: serverGone},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := drainConfig(t)
			fail, recover := tt.setup(t, &cfg)
			testReadiness(t, cfg, fail, recover)
		})
	}
}

// diskFull puts the embedded log on a 32 MiB tmpfs; fail fills it.
func diskFull(t *testing.T, cfg *config.Config) (fail, recover func()) {
	cfg.DataDir = tmpfs.Mount(t, "32m")
	filler := filepath.Join(cfg.DataDir, "filler")
	return func() { tmpfs.Fill(t, filler, 0) }, func() {
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
	}
}

// serverGone points the log at an external nats-server; fail shuts it down, recover starts it
// again on its port with its store.
func serverGone(t *testing.T, cfg *config.Config) (fail, recover func()) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	opts := server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, MaxPayload: natstest.MaxPayload}
	var ns *server.Server
	start := func() {
		o := opts
		if ns, err = server.NewServer(&o); err != nil {
			t.Fatal(err)
		}
		go ns.Start()
		if !ns.ReadyForConnections(30 * time.Second) {
			t.Fatal("nats-server did not start")
		}
	}
	stop := func() { ns.Shutdown(); ns.WaitForShutdown() }
	start()
	t.Cleanup(func() { stop() })
	cfg.EventLog.NATSURL = "nats://127.0.0.1:" + strconv.Itoa(port)
	return stop, start
}

func testReadiness(t *testing.T, cfg config.Config, fail, recover func()) {
	s, cancel, done, runErr := run(t, cfg)
	addr := s.HTTPAddr().String()
	awaitReady(t, s, true, 10*time.Second)
	sent, acked := map[string]bool{}, map[string]bool{}
	n := 0
	send := func(timeout time.Duration) (int, string) {
		n++
		id := mvmntID(n)
		sent[mvmntKey(id)] = true
		status, retryAfter, _, err := sendMVMNT(context.Background(), &http.Client{Timeout: timeout}, addr, id, 64<<10)
		if err != nil {
			t.Fatalf("webhook %d: %v", n, err)
		}
		if status == http.StatusOK {
			acked[mvmntKey(id)] = true
		}
		return status, retryAfter
	}
	for range 10 {
		if status, _ := send(15 * time.Second); status != http.StatusOK {
			t.Fatalf("webhook before the fault: got %d, want 200", status)
		}
	}

	fail()
	// The first appends after the fault may still succeed (free bytes) or wait for the commit
	// timeout; then the log knows.
	var refused []int
	for status := 0; status != http.StatusServiceUnavailable; {
		if n > 200 {
			t.Fatalf("%d webhooks sent, none refused after the fault", n)
		}
		status, _ = send(30 * time.Second)
		if status != http.StatusOK && status != http.StatusServiceUnavailable {
			t.Fatalf("webhook after the fault: got %d, want 200 or 503", status)
		}
		if status != http.StatusOK {
			refused = append(refused, n)
		}
	}
	awaitReady(t, s, false, 30*time.Second)
	for range 5 {
		// The log is known to be failing: answered at once, well within the client's 5 s.
		status, retryAfter := send(5 * time.Second)
		if status != http.StatusServiceUnavailable || retryAfter != gateway.RetryAfter {
			t.Errorf("webhook while not ready: got %d with Retry-After %q, want 503 with %q", status, retryAfter, gateway.RetryAfter)
		}
		refused = append(refused, n)
	}

	recover()
	awaitReady(t, s, true, 60*time.Second)
	for _, i := range refused { // the provider retries
		if status, _, _, err := sendMVMNT(context.Background(), &http.Client{Timeout: 15 * time.Second}, addr, mvmntID(i), 64<<10); err != nil || status != http.StatusOK {
			t.Errorf("retry of webhook %d after recovery: status %d, err %v; want 200", i, status, err)
		}
		acked[mvmntKey(mvmntID(i))] = true
	}
	if status, _ := send(15 * time.Second); status != http.StatusOK {
		t.Errorf("webhook after recovery: got %d, want 200", status)
	}
	cancel()
	<-done
	if *runErr != nil {
		t.Errorf("Run: %v", *runErr)
	}
	t.Logf("%d webhooks sent, %d refused and retried", n, len(refused))
	checkStored(t, storedKeys(t, cfg), acked, sent)
}
