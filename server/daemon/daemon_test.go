package daemon_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	moveapiv1 "github.com/hookstream/hookstream/gen/hookstream/moveapi/v1"
	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/convert"
	"github.com/hookstream/hookstream/server/daemon"
)

// start runs a daemon with the default configuration on loopback ports until the test ends.
// done is closed when Run returned, with its error in *runErr.
func start(t *testing.T) (s *daemon.Server, cancel context.CancelFunc, done <-chan struct{}, runErr *error) {
	t.Helper()
	cfg := config.Default()
	cfg.HTTP.Addr, cfg.GRPC.Addr, cfg.API.Addr, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	return run(t, cfg)
}

// run runs a daemon of cfg until the test ends.
func run(t *testing.T, cfg config.Config) (s *daemon.Server, cancel context.CancelFunc, done <-chan struct{}, runErr *error) {
	t.Helper()
	s, err := daemon.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	cancel, done, runErr = runServer(t, s)
	return s, cancel, done, runErr
}

// runServer runs s, made by daemon.New, until the test ends.
func runServer(t *testing.T, s *daemon.Server) (cancel context.CancelFunc, done <-chan struct{}, runErr *error) {
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	runErr = new(error)
	go func() {
		*runErr = s.Run(ctx)
		close(stopped)
	}()
	t.Cleanup(func() {
		cancel()
		<-stopped
	})
	return cancel, stopped, runErr
}

func TestServe(t *testing.T) {
	t.Parallel()
	s, cancel, done, runErr := start(t)

	conn, err := grpc.NewClient(s.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()

	t.Run("grpc_health", func(t *testing.T) {
		// Run only sets SERVING after the servers started: poll until then.
		for {
			resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
			if err != nil {
				t.Fatalf("health check: %v", err)
			}
			if resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})

	t.Run("reflection_lists_services", func(t *testing.T) {
		sctx, cancelStream := context.WithCancel(ctx)
		defer cancelStream() // an open stream would hold up the graceful stop below
		stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(sctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, svc := range resp.GetListServicesResponse().GetService() {
			got = append(got, svc.GetName())
		}
		slices.Sort(got)
		want := []string{
			"grpc.health.v1.Health",
			"grpc.reflection.v1.ServerReflection",
			"grpc.reflection.v1alpha.ServerReflection",
			"hookstream.v1.EventService",
			"hookstream.v1.QuarantineService",
			"hookstream.v1.WebhookService",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("services differ (-want +got):\n%s", diff)
		}
	})

	t.Run("webhook_to_subscriber", func(t *testing.T) {
		sctx, cancelStream := context.WithCancel(ctx)
		defer cancelStream()
		sub, err := hookstreamv1.NewEventServiceClient(conn).Subscribe(sctx)
		if err != nil {
			t.Fatal(err)
		}
		open := &hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Open_{Open: &hookstreamv1.SubscribeRequest_Open{Group: "daemon-test"}}}
		if err := sub.Send(open); err != nil {
			t.Fatal(err)
		}
		if m, err := sub.Recv(); err != nil || m.GetSubscribed() == nil {
			t.Fatalf("subscribe: %v %v", m, err)
		}
		w := &moveapiv1.Webhook{EventName: "job.state.started", Timestamp: timestamppb.Now(), Detail: &moveapiv1.Detail{JobId: "j"}}
		resp, err := hookstreamv1.NewWebhookServiceClient(conn).ReceiveMoveApiWebhook(ctx, &hookstreamv1.ReceiveMoveApiWebhookRequest{Webhook: w, WebhookId: "msg_daemon"})
		if err != nil {
			t.Fatal(err)
		}
		for {
			m, err := sub.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if evs := m.GetEvents().GetEvents(); len(evs) > 0 {
				if evs[0].GetEvent().GetId() != resp.GetReceipt().GetEventId() || evs[0].GetEvent().GetMoveapi().GetEventName() != "job.state.started" {
					t.Errorf("subscriber got %v, want event %s", evs[0].GetEvent(), resp.GetReceipt().GetEventId())
				}
				return
			}
		}
	})

	t.Run("http_tail_and_list", func(t *testing.T) {
		tctx, cancelTail := context.WithTimeout(ctx, 5*time.Second)
		defer cancelTail()
		req, _ := http.NewRequestWithContext(tctx, http.MethodGet, "http://"+s.APIAddr().String()+"/v1/events:tail?start.policy=POLICY_ALL", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		line, err := bufio.NewReader(resp.Body).ReadBytes('\n')
		if err != nil || !bytes.Contains(line, []byte(`"type":"job.state.started"`)) {
			t.Errorf("tail over HTTP: %s %v", line, err)
		}
		if got := resp.Header.Get("Content-Type"); got != convert.StreamContentType {
			t.Errorf("tail over HTTP: got Content-Type %q, want %q (the OpenAPI document's)", got, convert.StreamContentType)
		}
		list, err := http.Get("http://" + s.APIAddr().String() + "/v1/events?page_size=10")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(list.Body)
		list.Body.Close()
		if list.StatusCode != 200 || !bytes.Contains(body, []byte(`"dedup_key":"grpc/msg_daemon"`)) {
			t.Errorf("list over HTTP: %d %s", list.StatusCode, body)
		}
	})

	t.Run("public_door_serves_no_events", func(t *testing.T) {
		for _, path := range []string{"/v1/events", "/v1/events:tail", "/v1/quarantine", "/v1/events/01a2f000-0000-7000-8000-0000000000ff"} {
			resp, err := http.Get("http://" + s.HTTPAddr().String() + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("public GET %s: status %d, want 404", path, resp.StatusCode)
			}
		}
	})

	for _, path := range []string{"/healthz", "/readyz"} {
		t.Run(path[1:], func(t *testing.T) {
			resp, err := http.Get("http://" + s.HTTPAddr().String() + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s: got status %d, want 200", path, resp.StatusCode)
			}
		})
	}

	cancel()
	select {
	case <-done:
		if *runErr != nil {
			t.Fatalf("Run after cancel: got %v, want nil", *runErr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	if _, err := http.Get("http://" + s.HTTPAddr().String() + "/healthz"); err == nil {
		t.Error("HTTP still answers after shutdown")
	}
}

// TestListEventsOverHTTPIsBounded lists big events over the HTTP mapping of ListEvents with the
// largest page size: every page answers 200 with at most max_response_bytes of events (or one),
// the listing is complete, and no internal error text reaches the client.
func TestListEventsOverHTTPIsBounded(t *testing.T) {
	t.Parallel()
	const listener = limitsListener
	s := serve(t, func(*config.Config) {})
	public, base := "http://"+s.HTTPAddr().String(), "http://"+s.APIAddr().String()

	const n = 12
	for i := range n {
		body := fmt.Sprintf(`{"event_type":"big","n":%d,"pad":"%s"}`, i, strings.Repeat("x", 400<<10))
		resp, err := http.Post(public+"/webhooks/v1/listeners/"+listener+"/notify", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("webhook %d: %d", i, resp.StatusCode)
		}
	}
	listed, token := 0, ""
	for page := 0; page < 2*n; page++ {
		resp, err := http.Get(base + "/v1/events?page_size=1000&page_token=" + token)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("page %d: %d %.200s, want 200", page, resp.StatusCode, out)
		}
		var p struct {
			Events []struct {
				Raw string `json:"raw"`
			} `json:"events"`
			NextPageToken string `json:"next_page_token"`
		}
		if err := json.Unmarshal(out, &p); err != nil {
			t.Fatal(err)
		}
		if len(p.Events) > 2 {
			t.Errorf("page %d: %d events of 800 KB each, want at most max_response_bytes (1 MiB) of them", page, len(p.Events))
		}
		listed += len(p.Events)
		if token = p.NextPageToken; token == "" {
			break
		}
	}
	if listed != n {
		t.Errorf("listed %d events, want %d", listed, n)
	}
}
