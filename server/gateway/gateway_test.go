package gateway_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/eventlog"
	"github.com/hookstream/hookstream/server/gateway"
	"github.com/hookstream/hookstream/server/ingest"
	"github.com/hookstream/hookstream/server/internal/testenv"
	"github.com/hookstream/hookstream/server/verify"
)

const (
	svixSecret     = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	svixOldSecret  = "whsec_" + "b2xkLXNlY3JldC1vbGQtc2VjcmV0LW9sZC1zZWNyZXQ="
	mvmntToken     = "mvmnt-current-token"
	mvmntOldToken  = "mvmnt-previous-token"
	movementSecret = "movement-shared-secret"
	listenerID     = "0b6f7c1e-5a4d-4c3b-9a2e-1f0e9d8c7b6a"
	hmacListenerID = "7d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	listenerToken  = "mwt_listener_token"
	hmacSecret     = "hmac-secret"
)

type frontDoor struct {
	url    string
	addr   string // host:port of url
	h      *gateway.Handler
	log    *eventlog.Log
	events hookstreamv1.EventServiceClient
}

// start runs the real front door (gateway handler in a net/http server) on the real ingestion
// core, an embedded event log and EventService over gRPC on loopback.
func start(t testing.TB, now func() time.Time) *frontDoor {
	t.Helper()
	return startWith(t, now, 0)
}

// startWith is start with at most maxInFlight webhook requests at once (0: the default).
func startWith(t testing.TB, now func() time.Time, maxInFlight int) *frontDoor {
	t.Helper()
	return startOpts(t, now, maxInFlight, nil)
}

// startOpts is startWith on an event log with the default options changed by set.
func startOpts(t testing.TB, now func() time.Time, maxInFlight int, set func(*eventlog.Options)) *frontDoor {
	t.Helper()
	return startDoor(t, now, func(o *gateway.Options) {
		if maxInFlight != 0 {
			o.MaxInFlight = maxInFlight
		}
	}, set)
}

// startDoor is start with the front door's options, as configured by default, changed by door
// (if not nil), on an event log with the default options changed by set (if not nil).
func startDoor(t testing.TB, now func() time.Time, door func(*gateway.Options), set func(*eventlog.Options)) *frontDoor {
	t.Helper()
	return startDoorCore(t, now, door, set, nil)
}

// startDoorCore is startDoor with the core's options changed by core (if not nil).
func startDoorCore(t testing.TB, now func() time.Time, door func(*gateway.Options), set func(*eventlog.Options), core func(*ingest.Options)) *frontDoor {
	t.Helper()
	d := config.Default()
	var opts []func(*eventlog.Options)
	if set != nil {
		opts = append(opts, set)
	}
	l := testenv.OpenLog(t, opts...)
	env := testenv.ServicesWith(t, l, func(o *ingest.Options) {
		o.Listeners = map[string]ingest.Listener{listenerID: {DefaultType: "notification"}, hmacListenerID: {DefaultType: "signed"}}
		if core != nil {
			core(o)
		}
	})
	in, conn := env.Ingest, env.Conn

	svix, err := verify.Svix([]string{svixSecret, svixOldSecret}, 5*time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := verify.HMAC("X-Hub-Signature-256", "sha256", "sha256=", "hex", []string{hmacSecret})
	if err != nil {
		t.Fatal(err)
	}
	o := gateway.Options{
		Webhooks: in,
		MoveAPI:  svix,
		Movement: verify.Token([]string{movementSecret}),
		MVMNT:    verify.APIKey("X-Api-Key", []string{mvmntToken, mvmntOldToken}),
		Listeners: map[string]gateway.Listener{
			listenerID:     {Verifier: verify.Bearer([]string{listenerToken}), DedupHeader: "X-Event-Id"},
			hmacListenerID: {Verifier: verify.All(verify.Bearer([]string{listenerToken}), sig)},
		},
		BodyLimit:   d.HTTP.BodyLimit,
		MaxInFlight: d.HTTP.MaxInFlight,

		MaxUnverifiedInFlight: d.HTTP.MaxUnverifiedInFlight,
		BodyReadTimeout:       d.HTTP.BodyReadTimeout,
	}
	if door != nil {
		door(&o)
	}
	h, err := gateway.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return &frontDoor{url: hs.URL, addr: hs.Listener.Addr().String(), h: h, log: l, events: hookstreamv1.NewEventServiceClient(conn)}
}

// signed builds a correctly authenticated request of provider for body.
func signed(t testing.TB, base, provider string, body []byte) *http.Request {
	t.Helper()
	var r *http.Request
	switch provider {
	case "moveapi":
		r = httptest.NewRequest(http.MethodPost, base+"/webhooks/moveapi", bytes.NewReader(body))
		id := fmt.Sprintf("msg_%x", body[:min(len(body), 8)]) + fmt.Sprint(len(body))
		ts := time.Now()
		s, err := verify.Sign(svixSecret, id, ts, body)
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Svix-Id", id)
		r.Header.Set("Svix-Timestamp", fmt.Sprint(ts.Unix()))
		r.Header.Set("Svix-Signature", s)
	case "movement":
		r = httptest.NewRequest(http.MethodPost, base+"/webhooks/movement?token="+movementSecret, bytes.NewReader(body))
	case "mvmnt":
		r = httptest.NewRequest(http.MethodPost, base+"/webhooks/mvmnt", bytes.NewReader(body))
		r.Header.Set("X-Api-Key", mvmntToken)
	case "listener":
		r = httptest.NewRequest(http.MethodPost, base+"/webhooks/v1/listeners/"+listenerID+"/notify", bytes.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+listenerToken)
	default:
		t.Fatalf("provider %q", provider)
	}
	r.RequestURI = ""
	r.Header.Set("Content-Type", "application/json")
	return r
}

func do(t testing.TB, r *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	return resp, readAll(t, resp)
}

// readAll reads and closes resp's body.
func readAll(t testing.TB, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestProviderPayloadsEndToEnd sends every sample payload of ../convert/testdata, correctly
// signed, through the real HTTP server: each is answered 200 after the append, and a Subscribe
// stream receives each event typed, with the exact raw bytes.
func TestProviderPayloadsEndToEnd(t *testing.T) {
	t.Parallel()
	fd := start(t, nil)
	files, err := filepath.Glob("../convert/testdata/*/*.json")
	if err != nil || len(files) < 12 {
		t.Fatalf("samples: %v (%d)", err, len(files))
	}
	sentRaw := map[string]bool{}
	wantEvents := 0
	for _, f := range files {
		provider := filepath.Base(filepath.Dir(f))
		if provider == "mvmnt_entities" {
			provider = "mvmnt"
		}
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		resp, out := do(t, signed(t, fd.url, provider, body))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d %s", f, resp.StatusCode, out)
		}
		if resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s: no X-Request-Id", f)
		}
		if provider == "listener" && string(out) != `{"message":"Event received successfully","status":"RECEIVED"}` {
			t.Errorf("%s: listener answer %s", f, out)
		}
		// Count what was stored: some samples repeat another's dedup key.
		var ack struct {
			Receipt  *struct{ Duplicate bool }
			Receipts []struct{ Duplicate bool }
		}
		if err := json.Unmarshal(out, &ack); err != nil {
			t.Fatalf("%s: answer %s: %v", f, out, err)
		}
		switch {
		case ack.Receipt != nil && !ack.Receipt.Duplicate, provider == "listener":
			wantEvents++
		}
		for _, r := range ack.Receipts {
			if !r.Duplicate {
				wantEvents++
			}
		}
		if provider == "mvmnt" {
			for _, item := range testenv.Items(t, body) {
				sentRaw[string(item)] = true // each event keeps its own item, not the delivery
			}
		} else {
			sentRaw[string(body)] = true
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sub, err := fd.events.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sub.Send(&hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Open_{Open: &hookstreamv1.SubscribeRequest_Open{Group: "e2e", Start: &hookstreamv1.StartPosition{Policy: hookstreamv1.StartPosition_POLICY_ALL}, MaxInFlight: 1000}}})
	got := 0
	for got < wantEvents {
		m, err := sub.Recv()
		if err != nil {
			t.Fatalf("after %d of %d events: %v", got, wantEvents, err)
		}
		for _, ev := range m.GetEvents().GetEvents() {
			got++
			e := ev.GetEvent()
			if !sentRaw[string(e.GetRaw())] {
				t.Errorf("event %s (%s): raw JSON is not byte for byte a body that was sent", e.GetId(), e.GetType())
			}
			if e.GetPayload() == nil || e.GetSource() == "" || e.GetRequestId() == "" {
				t.Errorf("event %s: payload %v source %q request id %q", e.GetId(), e.GetPayload() != nil, e.GetSource(), e.GetRequestId())
			}
		}
	}
}

// TestListenerReceiptHeaders checks that a listener's answer, whose body the contract fixes,
// carries the receipt in headers: stored with the event's id, then duplicate for the same body.
func TestListenerReceiptHeaders(t *testing.T) {
	t.Parallel()
	fd := start(t, nil)
	body := []byte(`{"event_type":"incident.created","data":{"incident_id":"INC0123456"}}`)
	var ids []string
	for _, want := range []string{"stored", "duplicate"} {
		resp, out := do(t, signed(t, fd.url, "listener", body))
		if resp.StatusCode != http.StatusOK || string(out) != `{"message":"Event received successfully","status":"RECEIVED"}` {
			t.Fatalf("got %d %s, want 200 and the contract's body", resp.StatusCode, out)
		}
		if got := resp.Header.Get("Hookstream-Outcome"); got != want {
			t.Errorf("Hookstream-Outcome: got %q, want %q", got, want)
		}
		ids = append(ids, resp.Header.Get("Hookstream-Event-Id"))
	}
	if ids[0] == "" || ids[1] == "" {
		t.Errorf("Hookstream-Event-Id: got %q, want an id on each answer", ids)
	}
	if got := storedCount(t, fd.log); got != 1 {
		t.Errorf("stored: got %d events, want 1", got)
	}
}

// storedCount is the number of events in the log.
func storedCount(t *testing.T, l *eventlog.Log) uint64 {
	t.Helper()
	return testenv.Usage(t, l).Events
}

// TestSvix checks the Svix scheme end to end with FACTS.md's test vector (at its own time) and
// every way a signature can be wrong; nothing that fails is stored.
func TestSvix(t *testing.T) {
	t.Parallel()
	vectorTime := time.Unix(1614265330, 0)
	fd := start(t, func() time.Time { return vectorTime })
	// The vector's body is not a Move API webhook, so it is authentic but invalid: 400, not 401.
	const vectorBody = `{"test": 2432232314}`
	body := []byte(`{"detail":{"job_id":"j"},"event_name":"job.state.started","timestamp":"2021-02-25T15:02:10Z"}`)
	sign := func(secret, id string, ts time.Time, b []byte) string {
		s, err := verify.Sign(secret, id, ts, b)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	req := func(prefix, id string, ts int64, sig string, b []byte) *http.Request {
		r, _ := http.NewRequest(http.MethodPost, fd.url+"/webhooks/moveapi", bytes.NewReader(b))
		if id != "" {
			r.Header.Set(prefix+"-Id", id)
		}
		if ts != 0 {
			r.Header.Set(prefix+"-Timestamp", fmt.Sprint(ts))
		}
		if sig != "" {
			r.Header.Set(prefix+"-Signature", sig)
		}
		return r
	}
	good := sign(svixSecret, "msg_1", vectorTime, body)
	for _, tt := range []struct {
		name string
		r    *http.Request
		want int
	}{
		{"test_vector_svix_headers", req("Svix", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", []byte(vectorBody)), 400},
		{"test_vector_webhook_headers", req("Webhook", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", []byte(vectorBody)), 400},
		{"valid_webhook", req("Svix", "msg_1", vectorTime.Unix(), good, body), 200},
		{"valid_webhook_headers", req("Webhook", "msg_2", vectorTime.Unix(), sign(svixSecret, "msg_2", vectorTime, body), body), 200},
		{"old_secret_during_rotation", req("Svix", "msg_3", vectorTime.Unix(), sign(svixOldSecret, "msg_3", vectorTime, body), body), 200},
		{"two_signatures_one_valid", req("Svix", "msg_4", vectorTime.Unix(), "v1,AAAA "+sign(svixSecret, "msg_4", vectorTime, body), body), 200},
		{"duplicate_is_200", req("Svix", "msg_1", vectorTime.Unix(), good, body), 200},
		{"expired_timestamp", req("Svix", "msg_5", vectorTime.Add(-6*time.Minute).Unix(), sign(svixSecret, "msg_5", vectorTime.Add(-6*time.Minute), body), body), 401},
		{"future_timestamp", req("Svix", "msg_6", vectorTime.Add(6*time.Minute).Unix(), sign(svixSecret, "msg_6", vectorTime.Add(6*time.Minute), body), body), 401},
		{"signature_of_another_body", req("Svix", "msg_1", vectorTime.Unix(), good, []byte(strings.Replace(string(body), "started", "completed", 1))), 401},
		{"signature_of_another_id", req("Svix", "msg_other", vectorTime.Unix(), good, body), 401},
		{"wrong_secret", req("Svix", "msg_7", vectorTime.Unix(), sign("whsec_"+base64.StdEncoding.EncodeToString([]byte("not the secret")), "msg_7", vectorTime, body), body), 401},
		{"missing_id", req("Svix", "", vectorTime.Unix(), good, body), 401},
		{"missing_timestamp", req("Svix", "msg_1", 0, good, body), 401},
		{"missing_signature", req("Svix", "msg_1", vectorTime.Unix(), "", body), 401},
		{"no_headers", req("Svix", "", 0, "", body), 401},
		{"unknown_signature_version", req("Svix", "msg_1", vectorTime.Unix(), strings.Replace(good, "v1,", "v2,", 1), body), 401},
	} {
		resp, out := do(t, tt.r)
		if resp.StatusCode != tt.want {
			t.Errorf("%s: status %d (%s), want %d", tt.name, resp.StatusCode, out, tt.want)
		}
	}
	if n := storedCount(t, fd.log); n != 4 {
		t.Errorf("stored %d events, want 4 (the valid ones, the duplicate once)", n)
	}
}

// TestHostileInputs sends broken, oversized and malicious requests: each gets its exact status,
// nothing panics, and no goroutine is left behind.
func TestHostileInputs(t *testing.T) {
	fd := start(t, nil)
	valid := []byte(`{"sentAt":"2025-01-15T14:30:00Z","events":[{"event":"SHIPMENT_DELIVERED","timestamp":"2025-01-15T14:30:00Z","data":{"id":"660e8400-e29b-41d4-a716-446655440000","friendlyId":"SHP-12345","key":"ERP-SHIP-789"},"diff":null}]}`)
	mvmnt := func(body string) func() *http.Request {
		return func() *http.Request { return signed(t, fd.url, "mvmnt", []byte(body)) }
	}
	with := func(f func() *http.Request, edit func(r *http.Request)) func() *http.Request {
		return func() *http.Request { r := f(); edit(r); return r }
	}
	listener := func(body string) func() *http.Request {
		return func() *http.Request { return signed(t, fd.url, "listener", []byte(body)) }
	}
	raw := func(method, path, body string) func() *http.Request {
		return func() *http.Request {
			r, _ := http.NewRequest(method, fd.url+path, strings.NewReader(body))
			return r
		}
	}
	deep := strings.Repeat(`[`, 20000) + strings.Repeat(`]`, 20000)
	tests := []struct {
		name string
		req  func() *http.Request
		want int
	}{
		{"valid", mvmnt(string(valid)), 200},
		{"empty_body", mvmnt(""), 400},
		{"not_json", mvmnt("hello"), 400},
		{"json_array", mvmnt(`[1,2,3]`), 400},
		{"json_string", mvmnt(`"x"`), 400},
		{"json_null", mvmnt(`null`), 400},
		{"trailing_garbage", mvmnt(string(valid) + "garbage"), 400},
		{"two_documents", mvmnt(string(valid) + string(valid)), 400},
		{"truncated", mvmnt(string(valid[:len(valid)-3])), 400},
		{"wrong_type_events", mvmnt(`{"sentAt":"2025-01-15T14:30:00Z","events":"nope"}`), 400},
		{"wrong_type_timestamp", mvmnt(strings.Replace(string(valid), `"timestamp":"2025-01-15T14:30:00Z"`, `"timestamp":12`, 1)), 200}, // the item is quarantined on its own
		{"events_empty", mvmnt(`{"sentAt":"2025-01-15T14:30:00Z","events":[]}`), 400},
		{"missing_sent_at", mvmnt(strings.Replace(string(valid), `"sentAt":"2025-01-15T14:30:00Z",`, ``, 1)), 400},
		{"data_id_not_uuid", mvmnt(strings.Replace(string(valid), "660e8400-e29b-41d4-a716-446655440000", "nope", 1)), 200},         // the item is quarantined on its own
		{"huge_number", mvmnt(strings.Replace(string(valid), `"key":"ERP-SHIP-789"`, `"key":"ERP-SHIP-789","n":1e999999`, 1)), 200}, // the item is quarantined on its own
		{"huge_number_unknown_field", mvmnt(strings.Replace(strings.Replace(string(valid), "660e8400", "660e8405", 1), `"diff":null`, `"diff":null,"n":1e999999`, 1)), 200},
		{"deep_nesting", mvmnt(strings.Replace(string(valid), `"diff":null`, `"diff":null,"x":`+deep, 1)), 400},
		{"invalid_utf8", mvmnt(strings.Replace(string(valid), "SHP-12345", "SHP-\xff\xfe", 1)), 200}, // the item is quarantined on its own
		{"duplicate_keys", mvmnt(strings.Replace(string(valid), `"sentAt":"2025-01-15T14:30:00Z"`, `"sentAt":"2025-01-15T14:30:00Z","sentAt":"2025-01-15T14:30:00Z"`, 1)), 400},
		{"unknown_fields_accepted", mvmnt(strings.Replace(string(valid), `"diff":null`, `"diff":null,"newField":{"a":[1]}`, 1)), 200},
		{"unknown_event_accepted", mvmnt(strings.Replace(string(valid), "SHIPMENT_DELIVERED", "SHIPMENT_BEAMED", 1)), 200},
		{"oversized_body", mvmnt(`{"pad":"` + strings.Repeat("a", 1<<20) + `"}`), 413},
		{"wrong_method_get", with(mvmnt(string(valid)), func(r *http.Request) { r.Method = http.MethodGet }), 405},
		{"wrong_method_put", with(mvmnt(string(valid)), func(r *http.Request) { r.Method = http.MethodPut }), 405},
		{"wrong_content_type", with(mvmnt(string(valid)), func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }), 415},
		{"form_content_type", with(mvmnt(string(valid)), func(r *http.Request) { r.Header.Set("Content-Type", "application/x-www-form-urlencoded") }), 415},
		{"bad_content_type", with(mvmnt(string(valid)), func(r *http.Request) { r.Header.Set("Content-Type", ";;;") }), 415},
		{"json_with_charset", with(mvmnt(strings.Replace(string(valid), "660e8400", "660e8401", 1)), func(r *http.Request) { r.Header.Set("Content-Type", "application/json; charset=utf-8") }), 200},
		{"no_content_type", with(mvmnt(strings.Replace(string(valid), "660e8400", "660e8402", 1)), func(r *http.Request) { r.Header.Del("Content-Type") }), 200},
		{"missing_api_key", with(mvmnt(string(valid)), func(r *http.Request) { r.Header.Del("X-Api-Key") }), 401},
		{"wrong_api_key", with(mvmnt(string(valid)), func(r *http.Request) { r.Header.Set("X-Api-Key", "guess") }), 401},
		{"previous_api_key", with(mvmnt(strings.Replace(string(valid), "660e8400", "660e8403", 1)), func(r *http.Request) { r.Header.Set("X-Api-Key", mvmntOldToken) }), 200},
		{"api_key_in_query_only", with(mvmnt(string(valid)), func(r *http.Request) { r.Header.Del("X-Api-Key"); r.URL.RawQuery = "x-api-key=" + mvmntToken }), 401},
		{"movement_token_query", func() *http.Request {
			return signed(t, fd.url, "movement", []byte(`{"topic":"subscription","event":"unsubscribe","subscription":{"id":1,"kind":"sms"}}`))
		}, 200},
		{"movement_bearer", with(func() *http.Request {
			return signed(t, fd.url, "movement", []byte(`{"topic":"subscription","event":"unsubscribe","subscription":{"id":2,"kind":"sms"}}`))
		}, func(r *http.Request) { r.URL.RawQuery = ""; r.Header.Set("Authorization", "Bearer "+movementSecret) }), 200},
		{"movement_wrong_token", with(func() *http.Request {
			return signed(t, fd.url, "movement", []byte(`{"topic":"call","event":"finished","call":{"id":1}}`))
		}, func(r *http.Request) { r.URL.RawQuery = "token=guess" }), 401},
		{"movement_doc_invalid_email", func() *http.Request {
			return signed(t, fd.url, "movement", []byte(`{"topic":"email","event":"sent","email":{"id":1050,"sent_at":"2023-03-21T15:21:26.414Z","body":"Content of email","subject_line:" "Subject line of email"}}`))
		}, 400},
		{"unknown_route", raw(http.MethodPost, "/webhooks/stripe", `{}`), 404},
		{"unknown_listener", with(listener(`{}`), func(r *http.Request) {
			r.URL.Path = "/webhooks/v1/listeners/11111111-2222-4333-8444-555555555555/notify"
		}), 404},
		{"non_uuid_listener", with(listener(`{}`), func(r *http.Request) { r.URL.Path = "/webhooks/v1/listeners/not-a-uuid/notify" }), 404},
		{"listener_path_traversal", with(listener(`{}`), func(r *http.Request) { r.URL.Path = "/webhooks/v1/listeners/../../v1/events" }), 404},
		{"listener_ok", listener(`{"event_type":"incident.created","data":{"id":"INC1"}}`), 200},
		{"listener_no_token", with(listener(`{}`), func(r *http.Request) { r.Header.Del("Authorization") }), 401},
		{"listener_wrong_token", with(listener(`{}`), func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }), 401},
		{"listener_basic_instead_of_bearer", with(listener(`{}`), func(r *http.Request) { r.SetBasicAuth("u", listenerToken) }), 401},
		{"listener_array_body", listener(`[1]`), 400},
		{"listener_hmac_missing", with(listener(`{"a":1}`), func(r *http.Request) { r.URL.Path = "/webhooks/v1/listeners/" + hmacListenerID + "/notify" }), 401},
		{"listener_hmac_wrong", with(listener(`{"a":1}`), func(r *http.Request) {
			r.URL.Path = "/webhooks/v1/listeners/" + hmacListenerID + "/notify"
			r.Header.Set("X-Hub-Signature-256", "sha256="+hmacHex(`{"a":2}`))
		}), 401},
		{"listener_hmac_ok", with(listener(`{"a":1}`), func(r *http.Request) {
			r.URL.Path = "/webhooks/v1/listeners/" + hmacListenerID + "/notify"
			r.Header.Set("X-Hub-Signature-256", "sha256="+hmacHex(`{"a":1}`))
		}), 200},
		{"header_injection_request_id", with(mvmnt(strings.Replace(string(valid), "660e8400", "660e8404", 1)), func(r *http.Request) { r.Header.Set("X-Request-Id", "a b\tc") }), 200},
	}
	before := runtime.NumGoroutine()
	for _, tt := range tests {
		resp, out := do(t, tt.req())
		if resp.StatusCode != tt.want {
			t.Errorf("%s: status %d (%.200s), want %d", tt.name, resp.StatusCode, out, tt.want)
		}
		if resp.StatusCode >= 400 && resp.StatusCode != 404 && len(out) > 0 && !json.Valid(out) {
			t.Errorf("%s: error body is not JSON: %.200s", tt.name, out)
		}
	}
	if len(tests) < 40 {
		t.Errorf("%d hostile cases, want at least 40", len(tests))
	}
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+5 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+5 {
		t.Errorf("%d goroutines after the hostile requests, %d before", n, before)
	}
}

func hmacHex(body string) string {
	m := hmac.New(sha256.New, []byte(hmacSecret))
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

// TestErrorFormats pins the body of each kind of error: google.rpc.Status naming the violated
// fields on the provider routes, the listener contract's shape on listener routes.
func TestErrorFormats(t *testing.T) {
	t.Parallel()
	fd := start(t, nil)
	resp, out := do(t, signed(t, fd.url, "mvmnt", []byte(`{"sentAt":"2025-01-15T14:30:00Z","events":[]}`)))
	var st struct {
		Code    int
		Message string
		Details []struct {
			Type            string `json:"@type"`
			FieldViolations []struct {
				Field  string
				Reason string
			} `json:"field_violations"`
		}
	}
	if err := json.Unmarshal(out, &st); err != nil || resp.StatusCode != 400 || st.Code != 3 {
		t.Fatalf("invalid delivery: %d %s (%v)", resp.StatusCode, out, err)
	}
	found := false
	for _, d := range st.Details {
		for _, fv := range d.FieldViolations {
			found = found || (fv.Field == "delivery.events" && fv.Reason == "repeated.min_items")
		}
	}
	if !found {
		t.Errorf("400 body %s does not name delivery.events repeated.min_items", out)
	}

	r := signed(t, fd.url, "listener", []byte(`{}`))
	r.Header.Set("Authorization", "Bearer wrong")
	resp, out = do(t, r)
	var le struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(out, &le); err != nil || resp.StatusCode != 401 || le.Error.Code == "" || le.Error.Message == "" {
		t.Errorf("listener 401: %d %s", resp.StatusCode, out)
	}
	r = signed(t, fd.url, "listener", []byte(`{}`))
	r.URL.Path = "/webhooks/v1/listeners/11111111-2222-4333-8444-555555555555/notify"
	resp, out = do(t, r)
	if resp.StatusCode != 404 || len(out) != 0 {
		t.Errorf("unknown listener: %d %q, want 404 with an empty body", resp.StatusCode, out)
	}
}

// TestMalformedIsQuarantined checks that an authentic body that cannot be converted is kept.
func TestMalformedIsQuarantined(t *testing.T) {
	t.Parallel()
	fd := start(t, nil)
	bodies := []string{`{"sentAt":"2025-01-15T14:30:00Z","events":"nope"}`, `not json`}
	for _, b := range bodies {
		if resp, out := do(t, signed(t, fd.url, "mvmnt", []byte(b))); resp.StatusCode != 400 {
			t.Fatalf("%s: %d %s", b, resp.StatusCode, out)
		}
	}
	entries := testenv.Entries(t, fd.log)
	if len(entries) != len(bodies) {
		t.Fatalf("quarantine holds %d entries, want %d", len(entries), len(bodies))
	}
	for i, b := range bodies {
		e := entries[i]
		if string(e.GetRaw()) != b || e.GetReason() != hookstreamv1.QuarantineEntry_REASON_MALFORMED || e.GetProvider() != hookstreamv1.Provider_PROVIDER_MVMNT {
			t.Errorf("entry %d: %v", i+1, e)
		}
	}
}

// TestLogStopped answers 503 with Retry-After, never 2xx, when the event log cannot take events.
func TestLogStopped(t *testing.T) {
	t.Parallel()
	fd := start(t, nil)
	fd.log.Close()
	resp, out := do(t, signed(t, fd.url, "mvmnt", []byte(`{"sentAt":"2025-01-15T14:30:00Z","events":[{"event":"SHIPMENT_DELIVERED","timestamp":"2025-01-15T14:30:00Z","data":{"id":"660e8400-e29b-41d4-a716-446655440000"}}]}`)))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("log stopped: %d Retry-After %q (%s), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), out)
	}
}

// TestOverload holds the only place of a front door with MaxInFlight 1 with a request whose body
// is still arriving (waiting until it holds it, so nothing depends on timing): other webhooks are
// answered 429 with Retry-After, in each route's error format, and are not stored; once the slow
// request is answered 200, webhooks are taken again.
func TestOverload(t *testing.T) {
	t.Parallel()
	fd := startWith(t, nil, 1)
	slowItem, afterItem := mvmntItem(0), mvmntItem(999)
	slow := sendHalf(t, fd.addr, signed(t, fd.url, "mvmnt", mvmntDelivery(slowItem)))
	waitFor(t, "the slow request holds the only place", func() bool {
		authenticated, _ := gateway.InFlight(fd.h)
		return authenticated == 1
	})

	resp, out := do(t, signed(t, fd.url, "mvmnt", mvmntDelivery(mvmntItem(1))))
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("mvmnt while overloaded: got %d Retry-After %q %s, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), out)
	}
	checkError(t, out, false, "", codes.ResourceExhausted)
	resp, out = do(t, signed(t, fd.url, "listener", []byte(`{"a":1}`)))
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("listener while overloaded: got %d Retry-After %q %s, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), out)
	}
	checkError(t, out, true, "TOO_MANY_REQUESTS", codes.ResourceExhausted)

	if status, out := slow.finish(t); status != http.StatusOK {
		t.Fatalf("slow request: got %d %s, want 200", status, out)
	}
	if resp, out := do(t, signed(t, fd.url, "mvmnt", mvmntDelivery(afterItem))); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the slow request: got %d %s, want 200", resp.StatusCode, out)
	}
	if got := fd.h.Overloaded(); got != 2 {
		t.Errorf("got %d answered 429, want 2", got)
	}
	checkStored(t, fd, []stored{{hookstreamv1.Provider_PROVIDER_MVMNT, slowItem}, {hookstreamv1.Provider_PROVIDER_MVMNT, afterItem}})
}
