package daemon_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/daemon"
	"github.com/hookstream/hookstream/server/eventlog"
	"github.com/hookstream/hookstream/server/internal/testenv"
)

const drainToken = "drain-test-token"

// drainConfig is the default configuration on loopback ports, with an MVMNT token.
func drainConfig(t *testing.T) config.Config {
	cfg := config.Default()
	cfg.HTTP.Addr, cfg.GRPC.Addr, cfg.API.Addr, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	cfg.Providers.MVMNT.Tokens = []string{drainToken}
	return cfg
}

// mvmntID is the data.id (a UUID) of the n-th delivery of a test.
func mvmntID(n int) string { return fmt.Sprintf("660e8400-e29b-41d4-a716-%012d", n) }

// mvmntKey is the dedup key of the one-event MVMNT delivery sendMVMNT sends for id.
func mvmntKey(id string) string { return "SHIPMENT_DELIVERED/" + id + "/2025-01-15T14:30:00Z" }

// sendMVMNT posts a one-event MVMNT delivery with data.id id, padded with pad bytes, and returns
// the response's status (a 200 whose event was not stored, or was quarantined, is turned into
// 500: the tests send valid events only) and Retry-After, and whether the connection was
// reused. err is the client's error: no answer.
func sendMVMNT(ctx context.Context, c *http.Client, addr, id string, pad int) (status int, retryAfter string, reused bool, err error) {
	body := fmt.Sprintf(`{"sentAt":"2025-01-15T14:30:00Z","events":[{"event":"SHIPMENT_DELIVERED","timestamp":"2025-01-15T14:30:00Z","data":{"id":%q,"pad":%q}}]}`, id, bytes.Repeat([]byte("p"), pad))
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost, "http://"+addr+"/webhooks/mvmnt", bytes.NewReader([]byte(body)))
	if err != nil {
		return 0, "", false, err
	}
	req.Header.Set("X-Api-Key", drainToken)
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", reused, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, "", reused, err
	}
	status = resp.StatusCode
	if status == http.StatusOK && !bytes.Contains(b, []byte(`"OUTCOME_STORED"`)) && !bytes.Contains(b, []byte(`"OUTCOME_DUPLICATE"`)) {
		status = http.StatusInternalServerError
	}
	return status, resp.Header.Get("Retry-After"), reused, nil
}

// readyz returns the status of GET /readyz on a connection of its own.
func readyz(t *testing.T, s *daemon.Server) int {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + s.HTTPAddr().String() + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// awaitReady polls /readyz and gRPC health until they say want (bounded: the log probes every
// second), and fails the test otherwise.
func awaitReady(t *testing.T, s *daemon.Server, want bool, within time.Duration) {
	t.Helper()
	conn, err := grpc.NewClient(s.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	wantHTTP, wantGRPC := http.StatusOK, healthpb.HealthCheckResponse_SERVING
	if !want {
		wantHTTP, wantGRPC = http.StatusServiceUnavailable, healthpb.HealthCheckResponse_NOT_SERVING
	}
	deadline := time.Now().Add(within)
	for {
		gotHTTP := readyz(t, s)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err != nil {
			t.Fatalf("health check: %v", err)
		}
		if gotHTTP == wantHTTP && resp.GetStatus() == wantGRPC {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: /readyz %d, gRPC health %v; want %d and %v", within, gotHTTP, resp.GetStatus(), wantHTTP, wantGRPC)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// storedKeys opens the log of cfg (the daemon has stopped) and returns how many times each
// dedup key is stored.
func storedKeys(t *testing.T, cfg config.Config) map[string]int {
	t.Helper()
	l, err := eventlog.Open(context.Background(), eventlog.OptionsFrom(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := map[string]int{}
	for _, e := range testenv.Stored(t, l) {
		got[e.GetDedupKey()]++
	}
	return got
}

// checkStored checks that each key of acked is stored exactly once and that nothing else is
// stored but keys of sent (the probes of a failing log write none into the events stream).
func checkStored(t *testing.T, stored map[string]int, acked, sent map[string]bool) {
	t.Helper()
	lost := 0
	for k := range acked {
		if stored[k] == 0 {
			lost++
		}
	}
	for k, n := range stored {
		if n != 1 {
			t.Errorf("%s stored %d times, want once", k, n)
		}
		if !sent[k] {
			t.Errorf("%s stored but never sent", k)
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged webhooks not stored", lost, len(acked))
	}
}

// TestDrainUnderLoad is the reset reproduction: 32 clients send webhooks continuously on kept-alive
// connections when the daemon's context ends. Every request sent on a kept-alive connection is
// answered; a new connection is refused at connect once the listener is closed, or (queued by the
// kernel in that instant) reset with its request unread, and then not stored; every 2xx is stored.
// With a lame duck, /readyz is 503 while the webhooks are still served.
func TestDrainUnderLoad(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		lameDuck time.Duration
	}{
		{name: "no_lame_duck"},
		{name: "lame_duck", lameDuck: time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := drainConfig(t)
			cfg.ShutdownLameDuck = tt.lameDuck
			testDrainUnderLoad(t, cfg)
		})
	}
}

// loadResult counts what the clients of drainLoad saw.
type loadResult struct {
	mu          sync.Mutex
	sent, acked map[string]bool
	refused     int // the connection could not be made: nothing was sent
	resetReused int // no answer on a kept-alive connection
	resetFresh  int // no answer on a new connection
	// unread are the requests reset on a new connection: the kernel had queued the connection
	// when the listener closed, so hookstream never read them (checked: none is stored).
	unread       map[string]bool
	notReady     int // 503 during the drain
	otherAnswers int
}

func testDrainUnderLoad(t *testing.T, cfg config.Config) {
	s, cancel, done, runErr := run(t, cfg)
	addr := s.HTTPAddr().String()
	const clients, maxPerClient = 32, 3000
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	res := &loadResult{sent: map[string]bool{}, acked: map[string]bool{}, unread: map[string]bool{}}
	var answered atomic.Int64
	loaded := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for n := range maxPerClient {
				id := mvmntID(c*maxPerClient + n)
				status, _, reused, err := sendMVMNT(context.Background(), client, addr, id, 0)
				if !res.record(mvmntKey(id), status, reused, err) {
					return
				}
				if answered.Add(1) == 500 {
					once.Do(func() { close(loaded) })
				}
			}
		})
	}
	<-loaded // the drain starts mid-load, on kept-alive connections
	cancel()
	if cfg.ShutdownLameDuck > 0 {
		awaitReady(t, s, false, cfg.ShutdownLameDuck/2) // while the webhooks are still served
	}
	wg.Wait()
	<-done
	if *runErr != nil {
		t.Errorf("Run: %v", *runErr)
	}
	t.Logf("%d sent, %d acknowledged, %d refused at connect, %d resets on kept-alive connections, %d on new ones, %d 503, %d other answers",
		len(res.sent), len(res.acked), res.refused, res.resetReused, res.resetFresh, res.notReady, res.otherAnswers)
	if res.resetReused > 0 {
		t.Errorf("%d requests on kept-alive connections got no answer, want 0", res.resetReused)
	}
	// A connection the kernel queued in the instant the listener closed is reset by the kernel,
	// not by hookstream: its request was never read. None of them may have been stored.
	stored := storedKeys(t, cfg)
	for k := range res.unread {
		if stored[k] > 0 {
			t.Errorf("%s was reset on a new connection without an answer, but stored", k)
		}
	}
	if res.otherAnswers > 0 {
		t.Errorf("%d answers neither 2xx nor 503", res.otherAnswers)
	}
	checkStored(t, stored, res.acked, res.sent)
}

// record counts one request's outcome, and reports whether its client should go on: it stops
// once the server refuses connections.
func (r *loadResult) record(key string, status int, reused bool, err error) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	var op *net.OpError
	switch {
	case err != nil && errors.As(err, &op) && op.Op == "dial":
		r.refused++
		return false
	case err != nil && reused:
		r.sent[key] = true // it may have been read, and stored
		r.resetReused++
		return false
	case err != nil:
		r.sent[key], r.unread[key] = true, true
		r.resetFresh++
		return false
	case status/100 == 2:
		r.sent[key], r.acked[key] = true, true
	case status == http.StatusServiceUnavailable:
		r.sent[key] = true
		r.notReady++
	default:
		r.sent[key] = true
		r.otherAnswers++
	}
	return true
}

// TestDrainCutsStuckTails opens an HTTP tail (/v1/events:tail) and a gRPC Tail whose clients
// never read, over 10 MB of stored events: more than the sockets' buffers and the gRPC flow
// control window hold, so the server's writes to both block. The drain cuts both at
// shutdown_timeout (2 s), well before the HTTP tail's write timeout (30 s), and Run returns nil:
// nothing acknowledged was at risk. Each client sees its stream broken, not ended.
func TestDrainCutsStuckTails(t *testing.T) {
	t.Parallel()
	cfg := drainConfig(t)
	cfg.ShutdownTimeout = 2 * time.Second
	s, cancel, done, runErr := run(t, cfg)
	storeBig(t, s, 40, 256<<10)

	httpTail := stuckHTTPTail(t, s)
	conn, err := grpc.NewClient(s.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	grpcTail, err := hookstreamv1.NewEventServiceClient(conn).Tail(context.Background(), &hookstreamv1.TailRequest{Start: &hookstreamv1.StartPosition{Policy: hookstreamv1.StartPosition_POLICY_ALL}})
	if err != nil {
		t.Fatal(err)
	}
	// Not an assertion: time for the server to fill the buffers. Were it not stuck, the streams
	// would end cleanly and the checks below fail.
	time.Sleep(2 * time.Second)

	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("Run still running 20 s after its context ended, with a shutdown timeout of %v", cfg.ShutdownTimeout)
	}
	if *runErr != nil {
		t.Errorf("Run after cutting stuck tails: %v, want nil", *runErr)
	}

	httpTail.SetReadDeadline(time.Now().Add(30 * time.Second))
	got, err := io.ReadAll(httpTail)
	if bytes.HasSuffix(got, []byte("\r\n0\r\n\r\n")) {
		t.Errorf("HTTP tail ended cleanly after %d bytes (%v): want it cut", len(got), err)
	}
	t.Logf("HTTP tail: %d bytes read after the shutdown, then %v", len(got), err)
	var code codes.Code
	n := 0
	for {
		if _, err := grpcTail.Recv(); err != nil {
			if err == io.EOF {
				t.Errorf("gRPC Tail ended cleanly after %d messages: want it cut", n)
			}
			code = status.Code(err)
			break
		}
		n++
	}
	t.Logf("gRPC Tail: %d messages read after the shutdown, then %v", n, code)
}

// storeBig stores n MVMNT webhooks of about size bytes each, from 8 clients.
func storeBig(t *testing.T, s *daemon.Server, n, size int) {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := int(next.Add(1)); i <= n; i = int(next.Add(1)) {
				status, _, _, err := sendMVMNT(context.Background(), client, s.HTTPAddr().String(), mvmntID(i), size)
				if err != nil || status != http.StatusOK {
					t.Errorf("webhook %d: status %d, err %v", i, status, err)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// stuckHTTPTail opens GET /v1/events:tail from the start on a connection whose receive buffer
// is 4 KiB, and never reads it.
func stuckHTTPTail(t *testing.T, s *daemon.Server) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	c, err := d.Dial("tcp", s.APIAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, "GET /v1/events:tail?start.policy=POLICY_ALL HTTP/1.1\r\nHost: hookstream\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return c
}
