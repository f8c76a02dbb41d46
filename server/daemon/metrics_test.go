package daemon_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/types/known/durationpb"

	moveapiv1 "github.com/hookstream/hookstream/gen/hookstream/moveapi/v1"
	movementv1 "github.com/hookstream/hookstream/gen/hookstream/movement/v1"
	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/daemon"
	"github.com/hookstream/hookstream/server/internal/natstest"
	"github.com/hookstream/hookstream/server/internal/testenv"
	"github.com/hookstream/hookstream/server/verify"
)

// Routes of the webhook metrics' route label.
const (
	moveAPIRoute  = "/webhooks/moveapi"
	movementRoute = "/webhooks/movement"
	mvmntRoute    = "/webhooks/mvmnt"
	listenerRoute = "/webhooks/v1/listeners/{listener_id}/notify"
)

// scrape is one reading of /metrics.
type scrape map[string]*dto.MetricFamily

// scrapeMetrics reads s's /metrics (an open internal API: no credentials).
func scrapeMetrics(t *testing.T, s *daemon.Server) scrape {
	t.Helper()
	resp, err := http.Get("http://" + s.APIAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families
}

// value is the value of the series of family name with labels (a counter's or gauge's value, a
// histogram's count); 0 when there is none.
func (sc scrape) value(name string, labels ...string) float64 {
	f := sc[name]
	if f == nil {
		return 0
	}
series:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue series
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return 0
}

// metricsDaemon is a daemon whose every route has credentials, whose event log is an external
// nats-server the test may stop, and whose limits make each refusal easy to cause.
type metricsDaemon struct {
	s       *daemon.Server
	public  string
	secret  string // the Move API's Svix secret
	stopLog func()
}

const (
	metricsMovementToken = "movement-token"
	metricsMVMNTToken    = "mvmnt-token"
	metricsListenerToken = "listener-token"
	metricsBodyLimit     = 16 << 10
)

func startMetricsDaemon(t *testing.T) *metricsDaemon {
	t.Helper()
	ns := natstest.Server(t)
	cfg := config.Default()
	cfg.HTTP.Addr, cfg.GRPC.Addr, cfg.API.Addr, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	cfg.EventLog.NATSURL = ns.ClientURL()
	cfg.HTTP.BodyLimit = metricsBodyLimit
	cfg.HTTP.MaxUnverifiedInFlight = 1         // one slow Move API body holds it: the next is 429
	cfg.HTTP.BodyReadTimeout = 3 * time.Second // and that slow body is 408
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("metrics-test-secret-24by"))
	cfg.Providers.MoveAPI.Secrets = []string{secret}
	cfg.Providers.Movement.Tokens = []string{metricsMovementToken}
	cfg.Providers.MVMNT.Tokens = []string{metricsMVMNTToken}
	cfg.Listeners = map[string]config.Listener{secureListener: {Tokens: []string{metricsListenerToken}, DefaultType: "notification"}}
	s, _, _, _ := run(t, cfg)
	return &metricsDaemon{s: s, public: "http://" + s.HTTPAddr().String(), secret: secret, stopLog: func() { ns.Shutdown(); ns.WaitForShutdown() }}
}

// post sends a webhook and returns its status.
func (d *metricsDaemon) post(t *testing.T, path, contentType string, body []byte, header map[string]string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, d.public+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// svixHeaders signs body as message id.
func (d *metricsDaemon) svixHeaders(t *testing.T, id string, body []byte) map[string]string {
	t.Helper()
	now := time.Now()
	sig, err := verify.Sign(d.secret, id, now, body)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"Svix-Id": id, "Svix-Timestamp": fmt.Sprint(now.Unix()), "Svix-Signature": sig}
}

// slowMoveAPI sends a Move API request whose body never finishes: it holds the one place for
// unverified bodies until the body read timeout answers it 408. The answer's status is sent on
// the channel.
func (d *metricsDaemon) slowMoveAPI(t *testing.T) <-chan int {
	t.Helper()
	conn, err := net.Dial("tcp", d.s.HTTPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	h := d.svixHeaders(t, "msg_slow", []byte("{}"))
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\nSvix-Id: %s\r\nSvix-Timestamp: %s\r\nSvix-Signature: %s\r\n\r\n{", moveAPIRoute, h["Svix-Id"], h["Svix-Timestamp"], h["Svix-Signature"])
	status := make(chan int, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			status <- 0
			return
		}
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	return status
}

// driveRefusals causes a 429 and a 408 on the Move API route: a slow body holds the one place
// for unverified bodies, and signed requests are sent until one is refused. It returns how many
// of those were stored first (a signed request can come in before the slow body takes its
// place).
func (d *metricsDaemon) driveRefusals(t *testing.T) (stored int) {
	t.Helper()
	raw := testenv.Sample(t, "moveapi/job_state_started.json", &moveapiv1.Webhook{})
	slow := d.slowMoveAPI(t)
	for i := 0; ; i++ {
		id := fmt.Sprintf("msg_metrics_%d", i)
		switch got := d.post(t, moveAPIRoute, "application/json", raw, d.svixHeaders(t, id, raw)); got {
		case http.StatusOK:
			stored++
			continue
		case http.StatusTooManyRequests:
		default:
			t.Fatalf("signed Move API request: got status %d, want 200 or 429", got)
		}
		break
	}
	if got := <-slow; got != http.StatusRequestTimeout {
		t.Fatalf("slow body: got status %d, want 408", got)
	}
	return stored
}

// TestMetrics scrapes /metrics of a real daemon before and after driving every outcome of the
// webhook routes, a consumer group's ack, nack, redelivery and dead letter, and a stopped
// event log: each counter moved by exactly what the test caused.
func TestMetrics(t *testing.T) {
	t.Parallel()
	d := startMetricsDaemon(t)
	before := scrapeMetrics(t, d.s)
	movement := testenv.Sample(t, "movement/call_finished.json", &movementv1.Webhook{})
	withToken := movementRoute + "?token=" + metricsMovementToken
	mvmntKey := map[string]string{"X-Api-Key": metricsMVMNTToken}
	item := `{"event":"SHIPMENT_DELIVERED","timestamp":"2025-01-15T14:30:00Z","data":{"id":"%s","friendlyId":"SHP-1"},"diff":null}`
	batch := []byte(`{"sentAt":"2025-01-15T14:30:00Z","events":[` + fmt.Sprintf(item, "660e8400-e29b-41d4-a716-446655440000") + "," + fmt.Sprintf(item, "nope") + `]}`)
	for _, r := range []struct {
		name, path, contentType string
		body                    []byte
		header                  map[string]string
		want                    int
	}{
		{name: "stored", path: withToken, body: movement, want: 200},
		{name: "duplicate", path: withToken, body: movement, want: 200},
		{name: "malformed", path: withToken, body: []byte("{"), want: 400},
		{name: "not_json", path: withToken, contentType: "text/plain", body: movement, want: 415},
		{name: "too_large", path: withToken, body: bytes.Repeat([]byte(" "), metricsBodyLimit+1), want: 413},
		{name: "wrong_key", path: mvmntRoute, body: batch, header: map[string]string{"X-Api-Key": "forged"}, want: 401},
		{name: "unknown_listener", path: "/webhooks/v1/listeners/11111111-2222-4333-8444-555555555555/notify", body: []byte(`{}`), header: map[string]string{"Authorization": "Bearer " + metricsListenerToken}, want: 404},
		{name: "one_item_quarantined", path: mvmntRoute, body: batch, header: mvmntKey, want: 200},
		{name: "listener_stored", path: "/webhooks/v1/listeners/" + secureListener + "/notify", body: []byte(`{"event_type":"x"}`), header: map[string]string{"Authorization": "Bearer " + metricsListenerToken}, want: 200},
	} {
		ct := r.contentType
		if ct == "" {
			ct = "application/json"
		}
		if got := d.post(t, r.path, ct, r.body, r.header); got != r.want {
			t.Fatalf("%s: got status %d, want %d", r.name, got, r.want)
		}
	}
	moveAPIStored := d.driveRefusals(t)
	d.settleGroup(t)
	after := scrapeMetrics(t, d.s)

	t.Run("webhooks_total", func(t *testing.T) {
		t.Parallel() // reads the scrapes only
		for _, c := range []struct {
			provider, route, outcome string
			want                     int
		}{
			{"movement", movementRoute, "stored", 1},
			{"movement", movementRoute, "duplicate", 1},
			{"movement", movementRoute, "400", 1},
			{"movement", movementRoute, "415", 1},
			{"movement", movementRoute, "413", 1},
			{"mvmnt", mvmntRoute, "401", 1},
			{"mvmnt", mvmntRoute, "stored", 1},
			{"mvmnt", mvmntRoute, "quarantined", 1},
			{"listener", listenerRoute, "404", 1},
			{"listener", listenerRoute, "stored", 1},
			{"moveapi", moveAPIRoute, "stored", moveAPIStored},
			{"moveapi", moveAPIRoute, "429", 1},
			{"moveapi", moveAPIRoute, "408", 1},
			{"moveapi", moveAPIRoute, "401", 0},
			{"movement", movementRoute, "503", 0},
		} {
			got := after.value("hookstream_webhooks_total", "provider", c.provider, "route", c.route, "outcome", c.outcome) -
				before.value("hookstream_webhooks_total", "provider", c.provider, "route", c.route, "outcome", c.outcome)
			if got != float64(c.want) {
				t.Errorf("%s %s %s: got %v more, want %d", c.provider, c.route, c.outcome, got, c.want)
			}
		}
	})
	t.Run("histograms", func(t *testing.T) {
		t.Parallel() // reads the scrapes only
		for _, c := range []struct {
			name, provider string
			want           int
		}{
			{"hookstream_webhook_ack_seconds", "movement", 2},
			{"hookstream_webhook_ack_seconds", "mvmnt", 1},
			{"hookstream_webhook_ack_seconds", "listener", 1},
			{"hookstream_webhook_ack_seconds", "moveapi", moveAPIStored},
			{"hookstream_webhook_body_bytes", "movement", 3}, // stored, duplicate, malformed: the others were not read
			{"hookstream_webhook_body_bytes", "mvmnt", 1},
			{"hookstream_webhook_body_bytes", "listener", 1},
			{"hookstream_webhook_body_bytes", "moveapi", moveAPIStored},
		} {
			if got := after.value(c.name, "provider", c.provider) - before.value(c.name, "provider", c.provider); got != float64(c.want) {
				t.Errorf("%s of %s: got %v more observations, want %d", c.name, c.provider, got, c.want)
			}
		}
		if got := after.value("hookstream_commit_messages", "stream", "events") - before.value("hookstream_commit_messages", "stream", "events"); got < 1 {
			t.Errorf("got %v more commits of events, want at least 1", got)
		}
		if got := after.value("hookstream_commit_seconds", "stream", "quarantine") - before.value("hookstream_commit_seconds", "stream", "quarantine"); got < 1 {
			t.Errorf("got %v more commits of the quarantine, want at least 1", got)
		}
	})
	t.Run("streams_and_quarantine", func(t *testing.T) {
		t.Parallel()                // reads the scrapes only
		stored := 3 + moveAPIStored // movement, the MVMNT item, the listener's
		for _, c := range []struct {
			name   string
			labels []string
			want   int
		}{
			{"hookstream_stream_messages", []string{"stream", "events"}, stored},
			{"hookstream_stream_messages", []string{"stream", "quarantine"}, 3},
			{"hookstream_quarantine_entries", []string{"provider", "movement", "reason", "malformed"}, 1},
			{"hookstream_quarantine_entries", []string{"provider", "mvmnt", "reason", "invalid"}, 1},
			{"hookstream_quarantine_entries", []string{"provider", "movement", "reason", "dead_letter"}, 1},
		} {
			if got := after.value(c.name, c.labels...); got != float64(c.want) {
				t.Errorf("%s %v: got %v, want %d", c.name, c.labels, got, c.want)
			}
		}
		if after.value("hookstream_stream_bytes", "stream", "events") <= 0 {
			t.Errorf("hookstream_stream_bytes of events: got 0, want the stream's size")
		}
	})
	t.Run("group", func(t *testing.T) {
		t.Parallel() // reads the scrapes only
		for _, c := range []struct {
			name string
			want int
		}{
			{"hookstream_group_redeliveries_total", 1},
			{"hookstream_group_dead_letters_total", 1},
			{"hookstream_group_ack_seconds", 1},
			{"hookstream_group_pending", 0},
			{"hookstream_group_in_flight", 0},
		} {
			if got := after.value(c.name, "group", metricsGroup); got != float64(c.want) {
				t.Errorf("%s: got %v, want %d", c.name, got, c.want)
			}
		}
		if _, ok := after["hookstream_group_pending"]; !ok {
			t.Errorf("no hookstream_group_pending: the group's gauges are missing")
		}
	})
	t.Run("runtime_and_process", func(t *testing.T) {
		t.Parallel() // reads the scrapes only
		for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
			if _, ok := after[name]; !ok {
				t.Errorf("no %s", name)
			}
		}
	})
	t.Run("log_down", func(t *testing.T) {
		d.stopLog()
		if got := d.post(t, withToken, "application/json", movement, nil); got != http.StatusServiceUnavailable {
			t.Fatalf("webhook with the log down: got status %d, want 503", got)
		}
		down := scrapeMetrics(t, d.s)
		if got := down.value("hookstream_webhooks_total", "provider", "movement", "route", movementRoute, "outcome", "503") - before.value("hookstream_webhooks_total", "provider", "movement", "route", movementRoute, "outcome", "503"); got != 1 {
			t.Errorf("503s: got %v more, want 1", got)
		}
		errs := down.value("hookstream_append_errors_total", "stream", "events", "reason", "unavailable") + down.value("hookstream_append_errors_total", "stream", "events", "reason", "refused")
		if errs < 1 {
			t.Errorf("append errors of events: got %v, want at least 1", errs)
		}
	})
}

const metricsGroup = "metrics"

// settleGroup subscribes group metricsGroup to the Movement and MVMNT events (one each), with
// at most 2 deliveries: it acks the MVMNT event and nacks the Movement one until it is
// dead-lettered, then waits until the group holds nothing.
func (d *metricsDaemon) settleGroup(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := internalClient(t, d.s).Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = sub.Send(&hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Open_{Open: &hookstreamv1.SubscribeRequest_Open{
		Group:         metricsGroup,
		Filter:        &hookstreamv1.EventFilter{Providers: []hookstreamv1.Provider{hookstreamv1.Provider_PROVIDER_MOVEMENT, hookstreamv1.Provider_PROVIDER_MVMNT}},
		Start:         &hookstreamv1.StartPosition{Policy: hookstreamv1.StartPosition_POLICY_ALL},
		MaxDeliveries: 2,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			resp, err := sub.Recv()
			if err != nil {
				return
			}
			settle := &hookstreamv1.SubscribeRequest_Settle{}
			for _, ev := range resp.GetEvents().GetEvents() {
				if ev.GetEvent().GetProvider() == hookstreamv1.Provider_PROVIDER_MVMNT {
					settle.AckIds = append(settle.AckIds, ev.GetAckId())
				} else {
					settle.Nacks = append(settle.Nacks, &hookstreamv1.SubscribeRequest_Nack{AckId: ev.GetAckId(), Delay: durationpb.New(time.Millisecond)})
				}
			}
			if len(settle.AckIds)+len(settle.Nacks) > 0 {
				sub.Send(&hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Settle_{Settle: settle}})
			}
		}
	}()
	for {
		sc := scrapeMetrics(t, d.s)
		if sc.value("hookstream_group_dead_letters_total", "group", metricsGroup) == 1 &&
			sc.value("hookstream_group_in_flight", "group", metricsGroup) == 0 &&
			sc.value("hookstream_group_ack_seconds", "group", metricsGroup) == 1 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the group did not settle: %v", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestMetricsNeedAPrincipal reads /metrics on a secured internal API: any authenticated
// principal may, whatever its permissions; no credentials or a token no one has may not.
func TestMetricsNeedAPrincipal(t *testing.T) {
	t.Parallel()
	e := startSecured(t)
	c := e.client(nil)
	for _, tc := range []struct {
		as   string
		want int
	}{
		{as: "", want: http.StatusUnauthorized},
		{as: "wrong", want: http.StatusUnauthorized},
		{as: "reader", want: http.StatusOK},
		{as: "consumer", want: http.StatusOK},
		{as: "producer", want: http.StatusOK},
		{as: "admin", want: http.StatusOK},
	} {
		name := tc.as
		if name == "" {
			name = "none"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := e.get(t, c, http.MethodGet, "/metrics", tc.as); got != tc.want {
				t.Errorf("GET /metrics as %q: got status %d, want %d", tc.as, got, tc.want)
			}
		})
	}
}
