package gateway_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/gateway"
	"github.com/hookstream/hookstream/server/internal/testenv"
	"github.com/hookstream/hookstream/server/verify"
)

// trickleLen is the body length a trickler announces: it never sends that much.
const trickleLen = 1 << 16

// trickler is a client that sends a webhook's headers, then its body one byte at a time and
// never all of it, until it is answered.
type trickler struct {
	done   chan struct{} // closed once answered, or once the connection failed
	status int
	body   []byte
	err    error
}

// trickle starts a trickler of path with header on a connection of its own to addr.
func trickle(t *testing.T, addr, path string, header http.Header) *trickler {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var head bytes.Buffer
	fmt.Fprintf(&head, "POST %s HTTP/1.1\r\nHost: hookstream\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", path, trickleLen)
	header.Write(&head)
	head.WriteString("\r\n{")
	if _, err := conn.Write(head.Bytes()); err != nil {
		t.Fatal(err)
	}
	tr := &trickler{done: make(chan struct{})}
	go func() {
		defer close(tr.done)
		// A bound for a test that would otherwise hang, not a measure.
		conn.SetReadDeadline(time.Now().Add(time.Minute))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			tr.err = err
			return
		}
		tr.status = resp.StatusCode
		tr.body, tr.err = io.ReadAll(resp.Body)
	}()
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tr.done:
				return
			case <-tick.C:
			}
			if _, err := conn.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()
	return tr
}

// answered returns the trickler's answer, once it has one.
func (tr *trickler) answered(t *testing.T) (int, []byte) {
	t.Helper()
	<-tr.done
	if tr.err != nil {
		t.Fatalf("trickler: %v", tr.err)
	}
	return tr.status, tr.body
}

// waitFor polls cond until it holds. The bound only ends a test that would otherwise hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("never: %s", what)
		}
	}
}

// checkError fails unless body is the route's error body: the listener contract's
// {"error":{"code"}} with listenerCode, or a google.rpc.Status with code.
func checkError(t *testing.T, body []byte, listener bool, listenerCode string, code codes.Code) {
	t.Helper()
	var got struct {
		Code  codes.Code
		Error struct{ Code string }
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	switch {
	case listener && got.Error.Code != listenerCode:
		t.Errorf("error body %s: got code %q, want %q", body, got.Error.Code, listenerCode)
	case !listener && got.Code != code:
		t.Errorf("error body %s: got code %v, want %v", body, got.Code, code)
	}
}

// svixShaped is a Move API header set that passes the header stage (fresh timestamp, one v1
// entry of the right form) whose signature matches no body that will ever arrive.
func svixShaped(t *testing.T, id string) http.Header {
	t.Helper()
	now := time.Now()
	sig, err := verify.Sign(svixSecret, id, now, []byte("a body that is never sent"))
	if err != nil {
		t.Fatal(err)
	}
	return http.Header{"Svix-Id": {id}, "Svix-Timestamp": {fmt.Sprint(now.Unix())}, "Svix-Signature": {sig}}
}

func basicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

var (
	listenerPath     = "/webhooks/v1/listeners/" + listenerID + "/notify"
	hmacListenerPath = "/webhooks/v1/listeners/" + hmacListenerID + "/notify"
)

// hostileHeaders are header sets with no or wrong credentials, each refused by the header
// stage: listener says which error format the route answers in.
func hostileHeaders(t *testing.T) []struct {
	name, path string
	header     http.Header
	listener   bool
} {
	goodHMAC := "sha256=" + hmacHex("{}")
	stale := svixShaped(t, "msg_stale")
	stale.Set("Svix-Timestamp", fmt.Sprint(time.Now().Add(-time.Hour).Unix()))
	garbled := svixShaped(t, "msg_garbled")
	garbled.Set("Svix-Signature", "v1,not-a-signature")
	return []struct {
		name, path string
		header     http.Header
		listener   bool
	}{
		{"mvmnt_no_key", "/webhooks/mvmnt", http.Header{}, false},
		{"mvmnt_wrong_key", "/webhooks/mvmnt", http.Header{"X-Api-Key": {"guess"}}, false},
		{"mvmnt_key_in_authorization", "/webhooks/mvmnt", http.Header{"Authorization": {"Bearer " + mvmntToken}}, false},
		{"movement_nothing", "/webhooks/movement", http.Header{}, false},
		{"movement_wrong_query_token", "/webhooks/movement?token=guess", http.Header{}, false},
		{"movement_wrong_bearer", "/webhooks/movement", http.Header{"Authorization": {"Bearer guess"}}, false},
		{"movement_wrong_basic", "/webhooks/movement", http.Header{"Authorization": {basicAuth("movement", "guess")}}, false},
		{"movement_other_scheme", "/webhooks/movement", http.Header{"Authorization": {"Digest " + movementSecret}}, false},
		{"listener_nothing", listenerPath, http.Header{}, true},
		{"listener_wrong_bearer", listenerPath, http.Header{"Authorization": {"Bearer guess"}}, true},
		{"listener_token_as_basic", listenerPath, http.Header{"Authorization": {basicAuth("x", listenerToken)}}, true},
		{"hmac_listener_wrong_bearer", hmacListenerPath, http.Header{"Authorization": {"Bearer guess"}, "X-Hub-Signature-256": {goodHMAC}}, true},
		{"hmac_listener_no_signature", hmacListenerPath, http.Header{"Authorization": {"Bearer " + listenerToken}}, true},
		{"hmac_listener_malformed_signature", hmacListenerPath, http.Header{"Authorization": {"Bearer " + listenerToken}, "X-Hub-Signature-256": {"sha256=zz"}}, true},
		{"moveapi_no_headers", "/webhooks/moveapi", http.Header{}, false},
		{"moveapi_stale_timestamp", "/webhooks/moveapi", stale, false},
		{"moveapi_garbled_signature", "/webhooks/moveapi", garbled, false},
	}
}

// TestSlowClientsCannotStarveTheDoor is the slow-body reproduction, on a real loopback listener:
// hundreds of connections send webhook headers and trickle a body that never ends, far more
// than MaxInFlight. Those whose headers carry no or wrong credentials are answered 401 at once
// (their body is never complete, so only the header stage can have answered) and hold no
// place; Move API ones with a well-formed Svix header set hold places among
// MaxUnverifiedInFlight only. While they are held, an authentic delivery of every provider is
// answered 200 and stored; the held ones are then answered 408 at the body deadline, their
// places freed, and nothing of theirs is stored.
func TestSlowClientsCannotStarveTheDoor(t *testing.T) {
	t.Parallel()
	const (
		maxInFlight   = 16
		maxUnverified = 48
		hostile       = 255 // trickling connections refused by the header stage
		slowMoveAPI   = 40  // trickling Move API connections: fewer than maxUnverified, so Svix finds a place
	)
	fd := startDoor(t, nil, func(o *gateway.Options) {
		o.MaxInFlight, o.MaxUnverifiedInFlight = maxInFlight, maxUnverified
		// Long enough for the authentic deliveries below to be answered while the slow
		// bodies are held (checked below); short, so that the test ends soon.
		o.BodyReadTimeout = 3 * time.Second
	}, nil)

	cases := hostileHeaders(t)
	var refused []*trickler
	for i := range hostile {
		c := cases[i%len(cases)]
		refused = append(refused, trickle(t, fd.addr, c.path, c.header))
	}
	var held []*trickler
	for i := range slowMoveAPI {
		held = append(held, trickle(t, fd.addr, "/webhooks/moveapi", svixShaped(t, fmt.Sprintf("msg_slow_%d", i))))
	}
	for i, tr := range refused {
		c := cases[i%len(cases)]
		status, body := tr.answered(t)
		if status != http.StatusUnauthorized {
			t.Fatalf("%s: got %d %s, want 401 before the body", c.name, status, body)
		}
		checkError(t, body, c.listener, "UNAUTHORIZED", codes.Unauthenticated)
	}
	waitFor(t, "the slow Move API bodies hold their places", func() bool {
		_, unverified := gateway.InFlight(fd.h)
		return unverified == slowMoveAPI
	})

	want := sendAuthentic(t, fd)
	if n := fd.h.TimedOut(); n != 0 {
		t.Fatalf("%d slow bodies timed out before the authentic deliveries were answered: the test's body deadline is too short for this machine", n)
	}
	if authenticated, unverified := gateway.InFlight(fd.h); authenticated != 0 || unverified != slowMoveAPI {
		t.Errorf("places taken after the authentic deliveries: %d authenticated, %d unverified, want 0 and %d", authenticated, unverified, slowMoveAPI)
	}

	for _, tr := range held {
		status, body := tr.answered(t)
		if status != http.StatusRequestTimeout {
			t.Fatalf("slow Move API body: got %d %s, want 408", status, body)
		}
		checkError(t, body, false, "", codes.DeadlineExceeded)
	}
	if authenticated, unverified := gateway.InFlight(fd.h); authenticated != 0 || unverified != 0 {
		t.Errorf("places taken after every answer: %d authenticated, %d unverified, want none", authenticated, unverified)
	}
	if got, want := fd.h.Unauthorized(), int64(hostile); got != want {
		t.Errorf("got %d answered 401, want %d", got, want)
	}
	if got, want := fd.h.TimedOut(), int64(slowMoveAPI); got != want {
		t.Errorf("got %d answered 408, want %d", got, want)
	}
	if got := fd.h.Overloaded(); got != 0 {
		t.Errorf("got %d answered 429, want none", got)
	}
	checkStored(t, fd, want)
}

// stored is what identifies a stored event: its provider and its exact raw JSON.
type stored struct {
	provider hookstreamv1.Provider
	raw      string
}

// sendAuthentic sends an authentic delivery of every provider and way of authenticating, each
// answered 200, and returns what each stores.
func sendAuthentic(t *testing.T, fd *frontDoor) []stored {
	t.Helper()
	sample := func(path string) []byte {
		b, err := os.ReadFile("../convert/testdata/" + path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	moveapi, listener, movementQuery := sampleOf(t, "moveapi"), sampleOf(t, "listener"), sampleOf(t, "movement")
	signedListener := []byte(`{"event_type":"signed.slow_test"}`)
	movementBearer, movementBasic := sample("movement/email_sent.json"), sample("movement/subscription_unsubscribe.json")
	item := mvmntItem(424242)
	reqs := []*http.Request{
		signed(t, fd.url, "moveapi", moveapi),
		signed(t, fd.url, "movement", movementQuery),
		signed(t, fd.url, "mvmnt", mvmntDelivery(item)),
		signed(t, fd.url, "listener", listener),
	}
	for _, c := range []struct {
		body []byte
		auth string
	}{{movementBearer, "Bearer " + movementSecret}, {movementBasic, basicAuth("movement", movementSecret)}} {
		r := signed(t, fd.url, "movement", c.body)
		r.URL.RawQuery = ""
		r.Header.Set("Authorization", c.auth)
		reqs = append(reqs, r)
	}
	r, _ := http.NewRequest(http.MethodPost, fd.url+hmacListenerPath, bytes.NewReader(signedListener))
	r.Header.Set("Authorization", "Bearer "+listenerToken)
	r.Header.Set("X-Hub-Signature-256", "sha256="+hmacHex(string(signedListener)))
	reqs = append(reqs, r)
	for _, r := range reqs {
		if resp, out := do(t, r); resp.StatusCode != http.StatusOK {
			t.Fatalf("authentic %s: got %d %s, want 200", r.URL.Path, resp.StatusCode, out)
		}
	}
	return []stored{
		{hookstreamv1.Provider_PROVIDER_MOVEAPI, string(moveapi)},
		{hookstreamv1.Provider_PROVIDER_MOVEMENT, string(movementQuery)},
		{hookstreamv1.Provider_PROVIDER_MOVEMENT, string(movementBearer)},
		{hookstreamv1.Provider_PROVIDER_MOVEMENT, string(movementBasic)},
		{hookstreamv1.Provider_PROVIDER_MVMNT, item},
		{hookstreamv1.Provider_PROVIDER_LISTENER, string(listener)},
		{hookstreamv1.Provider_PROVIDER_LISTENER, string(signedListener)},
	}
}

// checkStored fails unless the log stores exactly want, in any order.
func checkStored(t *testing.T, fd *frontDoor, want []stored) {
	t.Helper()
	var got []stored
	for _, e := range testenv.Stored(t, fd.log) {
		got = append(got, stored{e.GetProvider(), string(e.GetRaw())})
	}
	order := func(a, b stored) int {
		if a.provider != b.provider {
			return int(a.provider - b.provider)
		}
		return strings.Compare(a.raw, b.raw)
	}
	slices.SortFunc(got, order)
	slices.SortFunc(want, order)
	if !slices.Equal(got, want) {
		t.Errorf("stored %d events %v, want %d: %v", len(got), got, len(want), want)
	}
}

// logRecords is an slog handler's output, kept for a test to read.
type logRecords struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logRecords) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// logger returns a logger whose records l keeps.
func (l *logRecords) logger() *slog.Logger { return slog.New(slog.NewJSONHandler(l, nil)) }

// with returns the records that have every key of keys.
func (l *logRecords) with(t *testing.T, keys ...string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(l.buf.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		has := true
		for _, k := range keys {
			_, ok := rec[k]
			has = has && ok
		}
		if has {
			out = append(out, rec)
		}
	}
	return out
}

// partial is a request sent with half of its body, on a connection of its own.
type partial struct {
	conn net.Conn
	rest []byte
}

// sendHalf sends r with half of its body to addr.
func sendHalf(t *testing.T, addr string, r *http.Request) *partial {
	t.Helper()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var head bytes.Buffer
	fmt.Fprintf(&head, "POST %s HTTP/1.1\r\nHost: hookstream\r\nContent-Length: %d\r\n", r.URL.RequestURI(), len(body))
	r.Header.Write(&head)
	head.WriteString("\r\n")
	head.Write(body[:len(body)/2])
	if _, err := conn.Write(head.Bytes()); err != nil {
		t.Fatal(err)
	}
	return &partial{conn: conn, rest: body[len(body)/2:]}
}

// finish sends the rest of the body and returns the answer.
func (p *partial) finish(t *testing.T) (int, []byte) {
	t.Helper()
	if _, err := p.conn.Write(p.rest); err != nil {
		t.Fatal(err)
	}
	p.conn.SetReadDeadline(time.Now().Add(time.Minute)) // a bound for a test that would hang
	resp, err := http.ReadResponse(bufio.NewReader(p.conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, readAll(t, resp)
}

// TestUnverifiedPlacesAreApart fills MaxUnverifiedInFlight with Move API bodies still arriving:
// the next Move API request is answered 429 with Retry-After (logged), while deliveries whose
// headers carry credentials still get 200, since their places are apart. A Move API request
// whose signature holds moves to MaxInFlight's places, so it is answered 429 too when those are
// taken, and takes none of them before. Only what was answered 200 is stored.
func TestUnverifiedPlacesAreApart(t *testing.T) {
	t.Parallel()
	var logs logRecords
	fd := startDoor(t, nil, func(o *gateway.Options) {
		o.MaxInFlight, o.MaxUnverifiedInFlight = 2, 2
		o.Logger = logs.logger()
	}, nil)
	moveapi := func(n int) ([]byte, *http.Request) {
		// The id signed sends is made of the body's first bytes and its length: n sets both.
		b := fmt.Appendf(nil, `{"event_name":"job.state.completed","timestamp":"2023-09-04T10:58:06Z","detail":{"api_name":"move-ugc-api","job_id":"%s"}}`, strings.Repeat("j", n+1))
		return b, signed(t, fd.url, "moveapi", b)
	}
	var slow []*partial
	var slowBodies [][]byte
	for n := range 2 {
		b, r := moveapi(n)
		slow, slowBodies = append(slow, sendHalf(t, fd.addr, r)), append(slowBodies, b)
	}
	waitFor(t, "two Move API bodies hold the unverified places", func() bool {
		_, unverified := gateway.InFlight(fd.h)
		return unverified == 2
	})

	_, r := moveapi(2)
	resp, out := do(t, r)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("Move API with the unverified places taken: got %d Retry-After %q %s, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), out)
	}
	checkError(t, out, false, "", codes.ResourceExhausted)
	if recs := logs.with(t, "limit", "places"); len(recs) != 1 || recs[0]["limit"] != "max_unverified_in_flight" {
		t.Errorf("got log records %v, want one naming max_unverified_in_flight", recs)
	}
	item, listener := mvmntItem(7), []byte(`{"event_type":"apart"}`)
	for _, r := range []*http.Request{signed(t, fd.url, "mvmnt", mvmntDelivery(item)), signed(t, fd.url, "listener", listener)} {
		if resp, out := do(t, r); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s beside the held Move API bodies: got %d %s, want 200", r.URL.Path, resp.StatusCode, out)
		}
	}

	// Take both authenticated places with MVMNT bodies still arriving: the first Move API
	// request to finish has a signature that holds, but no place left to move to.
	var held []*partial
	var heldItems []string
	for n := range 2 {
		it := mvmntItem(100 + n)
		held, heldItems = append(held, sendHalf(t, fd.addr, signed(t, fd.url, "mvmnt", mvmntDelivery(it)))), append(heldItems, it)
	}
	waitFor(t, "two MVMNT bodies hold the authenticated places", func() bool {
		authenticated, _ := gateway.InFlight(fd.h)
		return authenticated == 2
	})
	if status, out := slow[0].finish(t); status != http.StatusTooManyRequests {
		t.Fatalf("authentic Move API with the authenticated places taken: got %d %s, want 429", status, out)
	}
	for i, p := range held {
		if status, out := p.finish(t); status != http.StatusOK {
			t.Fatalf("held MVMNT delivery %d: got %d %s, want 200", i, status, out)
		}
	}
	if status, out := slow[1].finish(t); status != http.StatusOK {
		t.Fatalf("authentic Move API once places are free: got %d %s, want 200", status, out)
	}
	if authenticated, unverified := gateway.InFlight(fd.h); authenticated != 0 || unverified != 0 {
		t.Errorf("places taken after every answer: %d authenticated, %d unverified, want none", authenticated, unverified)
	}
	checkStored(t, fd, []stored{
		{hookstreamv1.Provider_PROVIDER_MVMNT, item},
		{hookstreamv1.Provider_PROVIDER_MVMNT, heldItems[0]},
		{hookstreamv1.Provider_PROVIDER_MVMNT, heldItems[1]},
		{hookstreamv1.Provider_PROVIDER_LISTENER, string(listener)},
		{hookstreamv1.Provider_PROVIDER_MOVEAPI, string(slowBodies[1])},
	})
}

// TestBodyReadTimeout trickles a body on every route, with headers that pass the header stage
// (valid credentials, or a well-formed Svix set): at BodyReadTimeout it is answered 408 in the
// route's error format and logged, its place is free again (the only one: an authentic delivery
// of the route gets 200 right after), and nothing of it is stored.
func TestBodyReadTimeout(t *testing.T) {
	t.Parallel()
	goodHMAC := "sha256=" + hmacHex("{}")
	tests := []struct {
		name, path string
		header     http.Header
		listener   bool
		provider   string // of the authentic delivery sent after; "" for the HMAC listener
	}{
		{"mvmnt_valid_key", "/webhooks/mvmnt", http.Header{"X-Api-Key": {mvmntToken}}, false, "mvmnt"},
		{"movement_valid_token", "/webhooks/movement?token=" + movementSecret, http.Header{}, false, "movement"},
		{"listener_valid_bearer", listenerPath, http.Header{"Authorization": {"Bearer " + listenerToken}}, true, "listener"},
		{"hmac_listener_valid_bearer", hmacListenerPath, http.Header{"Authorization": {"Bearer " + listenerToken}, "X-Hub-Signature-256": {goodHMAC}}, true, ""},
		{"moveapi_svix_shaped", "/webhooks/moveapi", nil, false, "moveapi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs logRecords
			fd := startDoor(t, nil, func(o *gateway.Options) {
				o.MaxInFlight, o.MaxUnverifiedInFlight = 1, 1
				o.BodyReadTimeout = 200 * time.Millisecond
				o.Logger = logs.logger()
			}, nil)
			header := tt.header
			if header == nil {
				header = svixShaped(t, "msg_trickle")
			}
			status, body := trickle(t, fd.addr, tt.path, header).answered(t)
			if status != http.StatusRequestTimeout {
				t.Fatalf("got %d %s, want 408", status, body)
			}
			checkError(t, body, tt.listener, "REQUEST_TIMEOUT", codes.DeadlineExceeded)
			if recs := logs.with(t, "timeout", "remote"); len(recs) != 1 {
				t.Errorf("got log records %v, want one of the body's timeout", recs)
			}
			if authenticated, unverified := gateway.InFlight(fd.h); authenticated != 0 || unverified != 0 {
				t.Errorf("places taken after the 408: %d authenticated, %d unverified, want none", authenticated, unverified)
			}

			raw := []byte(`{"event_type":"after.timeout"}`)
			var r *http.Request
			switch tt.provider {
			case "":
				r, _ = http.NewRequest(http.MethodPost, fd.url+tt.path, bytes.NewReader(raw))
				r.Header.Set("Authorization", "Bearer "+listenerToken)
				r.Header.Set("X-Hub-Signature-256", "sha256="+hmacHex(string(raw)))
			case "mvmnt":
				r = signed(t, fd.url, tt.provider, mvmntDelivery(mvmntItem(1)))
			case "listener":
				r = signed(t, fd.url, tt.provider, raw)
			default:
				r = signed(t, fd.url, tt.provider, sampleOf(t, tt.provider))
			}
			if resp, out := do(t, r); resp.StatusCode != http.StatusOK {
				t.Fatalf("authentic delivery after the 408: got %d %s, want 200", resp.StatusCode, out)
			}
			if got := storedCount(t, fd.log); got != 1 {
				t.Errorf("stored %d events, want 1: the authentic one", got)
			}
		})
	}
}

// sampleOf returns a sample payload of provider from ../convert/testdata.
func sampleOf(t *testing.T, provider string) []byte {
	t.Helper()
	name := map[string]string{"moveapi": "job_state_completed.json", "movement": "call_finished.json", "listener": "incident_created.json"}[provider]
	b, err := os.ReadFile("../convert/testdata/" + provider + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
