package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	moveapiv1 "github.com/hookstream/hookstream/gen/hookstream/moveapi/v1"
	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
)

func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hookstream")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startProcess starts the binary and waits until it serves.
func startProcess(t *testing.T, bin string, args ...string) *exec.Cmd {
	t.Helper()
	return startProcessEnv(t, bin, nil, args...)
}

func startProcessEnv(t *testing.T, bin string, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stderr)
	for lines.Scan() {
		var l struct{ Msg string }
		if json.Unmarshal(lines.Bytes(), &l) == nil && l.Msg == "hookstream serving" {
			go func() {
				for lines.Scan() {
				}
			}()
			return cmd
		}
	}
	cmd.Wait()
	t.Fatalf("hookstream exited before serving")
	return nil
}

// TestKillKeepsAcknowledged kills hookstream with SIGKILL several times while 16 producers
// append over gRPC, for both durability settings, then checks that every webhook that was
// acknowledged is stored, exactly once.
func TestKillKeepsAcknowledged(t *testing.T) {
	t.Parallel()
	bin := build(t)
	for _, durability := range []string{"always", "os"} {
		t.Run(durability, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			grpcAddr := freePort(t)
			args := []string{"--http-addr", "127.0.0.1:0", "--grpc-addr", grpcAddr, "--api-addr", "127.0.0.1:0", "--data-dir", dir, "--durability", durability}
			conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			client := hookstreamv1.NewWebhookServiceClient(conn)

			const kills = 4
			acked := killLoop(t, bin, nil, args, kills, func(ctx context.Context, n int64) string {
				id := fmt.Sprintf("msg_%d", n)
				w := &moveapiv1.Webhook{EventName: "job.state.completed", Timestamp: timestamppb.Now(), Detail: &moveapiv1.Detail{JobId: id}}
				rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				if _, err := client.ReceiveMoveApiWebhook(rctx, &hookstreamv1.ReceiveMoveApiWebhookRequest{Webhook: w, WebhookId: id}); err != nil {
					return ""
				}
				return "grpc/" + id // a gRPC producer's keys have their own space
			})

			cmd := startProcess(t, bin, args...)
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			stored := listAll(t, conn)
			if len(acked) < 100 {
				t.Fatalf("only %d webhooks acknowledged across %d kills: the test did not load hookstream", len(acked), kills)
			}
			lost := 0
			for id := range acked {
				if stored[id] == 0 {
					lost++
				}
			}
			for id, n := range stored {
				if n != 1 {
					t.Errorf("%s stored %d times, want once", id, n)
				}
			}
			if lost > 0 {
				t.Errorf("%d of %d acknowledged webhooks lost", lost, len(acked))
			}
			t.Logf("durability %s: %d acknowledged, %d stored, %d lost over %d kills", durability, len(acked), len(stored), lost, kills)
		})
	}
}

// killLoop starts hookstream kills times and, each time, sends from 16 goroutines until it kills
// the process with SIGKILL. send makes request n (every fifth is a retry of an earlier one) and
// returns the dedup key of what was acknowledged, or "" for a failure. It returns the keys
// acknowledged.
func killLoop(t *testing.T, bin string, env, args []string, kills int, send func(ctx context.Context, n int64) string) map[string]bool {
	t.Helper()
	var mu sync.Mutex
	acked := map[string]bool{}
	var next atomic.Int64
	for k := range kills {
		cmd := startProcessEnv(t, bin, env, args...)
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					n := next.Add(1)
					if n%5 == 0 {
						n -= 3 // a retry of an earlier request
					}
					if key := send(ctx, n); key != "" {
						mu.Lock()
						acked[key] = true
						mu.Unlock()
					}
				}
			}()
		}
		time.Sleep(time.Duration(300+100*k) * time.Millisecond)
		cmd.Process.Kill() // SIGKILL while requests are in flight
		cmd.Wait()
		stop()
		wg.Wait()
	}
	return acked
}

// listAll returns how many times each dedup key is stored.
func listAll(t *testing.T, conn *grpc.ClientConn) map[string]int {
	t.Helper()
	events := hookstreamv1.NewEventServiceClient(conn)
	stored := map[string]int{}
	req := &hookstreamv1.ListEventsRequest{PageSize: 1000}
	for {
		page, err := events.ListEvents(context.Background(), req, grpc.WaitForReady(true))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.GetEvents() {
			stored[e.GetDedupKey()]++
		}
		if page.GetNextPageToken() == "" {
			return stored
		}
		req.PageToken = page.GetNextPageToken()
	}
}

// TestKillOverHTTP kills hookstream with SIGKILL several times while 16 clients send signed MVMNT
// deliveries over HTTP, some of them retries: every delivery answered 2xx is stored exactly once.
func TestKillOverHTTP(t *testing.T) {
	t.Parallel()
	bin := build(t)
	dir := t.TempDir()
	httpAddr, grpcAddr := freePort(t), freePort(t)
	env := []string{"HOOKSTREAM_PROVIDERS_MVMNT_TOKENS=kill-test-token"}
	args := []string{"--http-addr", httpAddr, "--grpc-addr", grpcAddr, "--api-addr", "127.0.0.1:0", "--data-dir", dir}
	client := &http.Client{Timeout: 2 * time.Second}
	const kills = 4
	acked := killLoop(t, bin, env, args, kills, func(ctx context.Context, n int64) string {
		id := fmt.Sprintf("660e8400-e29b-41d4-a716-%012d", n)
		body := fmt.Sprintf(`{"sentAt":"2025-01-15T14:30:00Z","events":[{"event":"SHIPMENT_DELIVERED","timestamp":"2025-01-15T14:30:00Z","data":{"id":%q}}]}`, id)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+httpAddr+"/webhooks/mvmnt", bytes.NewReader([]byte(body)))
		req.Header.Set("X-Api-Key", "kill-test-token")
		resp, err := client.Do(req)
		if err != nil {
			return ""
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return ""
		}
		return "SHIPMENT_DELIVERED/" + id + "/2025-01-15T14:30:00Z"
	})
	cmd := startProcessEnv(t, bin, env, args...)
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stored := listAll(t, conn)
	if len(acked) < 100 {
		t.Fatalf("only %d deliveries acknowledged across %d kills", len(acked), kills)
	}
	lost := 0
	for key := range acked {
		if stored[key] == 0 {
			lost++
		}
	}
	for key, n := range stored {
		if n != 1 {
			t.Errorf("%s stored %d times, want once", key, n)
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged deliveries lost", lost, len(acked))
	}
	t.Logf("%d acknowledged over HTTP, %d stored, %d lost over %d kills", len(acked), len(stored), lost, kills)
}
