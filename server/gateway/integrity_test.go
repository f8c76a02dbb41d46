package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/eventlog"
	"github.com/hookstream/hookstream/server/internal/testenv"
	"github.com/hookstream/hookstream/server/internal/tmpfs"
)

// receipts is the answer of the MVMNT route.
type receipts struct {
	Receipts []struct {
		EventID           string `json:"event_id"`
		Sequence          string `json:"sequence"`
		Duplicate         bool   `json:"duplicate"`
		Outcome           string `json:"outcome"`
		QuarantineEntryID string `json:"quarantine_entry_id"`
		Violations        []struct{ Field, Rule, Message string }
	}
}

func postMvmnt(t *testing.T, fd *frontDoor, body []byte) (int, receipts) {
	t.Helper()
	resp, out := do(t, signed(t, fd.url, "mvmnt", body))
	var r receipts
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("answer %s: %v", out, err)
		}
	}
	return resp.StatusCode, r
}

// TestDedupKeysFromPresentValues sends distinct events that carry no provider id, and the same
// event twice: distinct events are each stored (never answered "duplicate" and dropped), the
// same bytes are stored once, and one listener addressed in two spellings is one listener.
func TestDedupKeysFromPresentValues(t *testing.T) {
	t.Parallel()
	type send struct {
		provider string
		body     string
		path     string // listener route, when not the default
		dup      bool   // want "duplicate"
	}
	upper := "/webhooks/v1/listeners/" + strings.ToUpper(listenerID) + "/notify"
	for _, tt := range []struct {
		name   string
		sends  []send
		stored int
	}{
		{name: "movement_calls_without_id", stored: 2, sends: []send{
			{provider: "movement", body: `{"topic":"call","event":"finished","call":{"outcome":"answered"}}`},
			{provider: "movement", body: `{"topic":"call","event":"finished","call":{"outcome":"no answer"}}`},
			{provider: "movement", body: `{"topic":"call","event":"finished","call":{"outcome":"answered"}}`, dup: true},
		}},
		{name: "movement_ids_zero", stored: 2, sends: []send{
			{provider: "movement", body: `{"topic":"subscription","event":"unsubscribe","subscription":{"id":0,"kind":"sms"}}`},
			{provider: "movement", body: `{"topic":"subscription","event":"unsubscribe","subscription":{"id":0,"kind":"email"}}`},
		}},
		{name: "movement_unknown_topic", stored: 2, sends: []send{
			{provider: "movement", body: `{"topic":"petition","event":"signed","petition":{"id":5}}`},
			{provider: "movement", body: `{"topic":"petition","event":"signed","petition":{"id":6}}`},
		}},
		{name: "movement_same_object_id", stored: 1, sends: []send{
			{provider: "movement", body: `{"topic":"call","event":"finished","call":{"id":7,"outcome":"answered"}}`},
			{provider: "movement", body: `{"topic":"call","event":"finished","call":{"id":7,"outcome":"answered"} }`, dup: true},
		}},
		{name: "listener_without_dedup_header", stored: 2, sends: []send{
			{provider: "listener", body: `{"event_type":"incident.created","data":{"n":1}}`},
			{provider: "listener", body: `{"event_type":"incident.created","data":{"n":2}}`},
		}},
		{name: "listener_id_case", stored: 1, sends: []send{
			{provider: "listener", body: `{"event_type":"incident.created","data":{"n":3}}`},
			{provider: "listener", body: `{"event_type":"incident.created","data":{"n":3}}`, path: upper, dup: true},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fd := start(t, nil)
			for i, s := range tt.sends {
				r := signed(t, fd.url, s.provider, []byte(s.body))
				if s.path != "" {
					r.URL.Path = s.path
				}
				resp, out := do(t, r)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("send %d: %d %s", i, resp.StatusCode, out)
				}
				if s.provider == "listener" {
					continue // the listener contract's answer carries no receipt
				}
				var ack struct{ Receipt struct{ Duplicate bool } }
				if err := json.Unmarshal(out, &ack); err != nil {
					t.Fatal(err)
				}
				if ack.Receipt.Duplicate != s.dup {
					t.Errorf("send %d (%s): duplicate %v, want %v", i, s.body, ack.Receipt.Duplicate, s.dup)
				}
			}
			stored := testenv.Stored(t, fd.log)
			if len(stored) != tt.stored {
				t.Fatalf("stored %d events, want %d", len(stored), tt.stored)
			}
			for _, e := range stored {
				if l := e.GetListener(); l != nil && (l.GetListenerId() != listenerID || e.GetSource() != "/webhooks/v1/listeners/"+listenerID+"/notify") {
					t.Errorf("listener event %s: listener id %q, source %q, want the canonical id", e.GetId(), l.GetListenerId(), e.GetSource())
				}
			}
		})
	}
}

// mvmntItem is one valid MVMNT item whose data id ends in n.
func mvmntItem(n int) string {
	return fmt.Sprintf(`{"event":"SHIPMENT_BOOKED","timestamp":"2025-01-15T14:30:00Z","data":{"id":"660e8400-e29b-41d4-a716-%012d","friendlyId":"SHP-%d","key":null},"diff":null}`, n, n)
}

func mvmntDelivery(items ...string) []byte {
	return []byte(`{"sentAt":"2025-01-15T14:31:00Z","events":[` + strings.Join(items, ",") + `]}`)
}

// peakRSS is the process's peak resident set size, from /proc/self/status (VmHWM).
func peakRSS(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// TestMvmntDeliveryStoresEachItemOnce posts one authentic delivery of 1,500 items: each event
// keeps its own item's bytes, not the whole delivery, so what is stored grows with the body, not
// with its square. Not parallel: it measures the process's memory.
func TestMvmntDeliveryStoresEachItemOnce(t *testing.T) {
	fd := start(t, nil)
	items := make([]string, 1500)
	for i := range items {
		items[i] = mvmntItem(i)
	}
	body := mvmntDelivery(items...)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rssBefore := peakRSS(t)

	code, r := postMvmnt(t, fd, body)
	if code != http.StatusOK || len(r.Receipts) != len(items) {
		t.Fatalf("status %d, %d receipts, want 200 and %d", code, len(r.Receipts), len(items))
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	rssGrowth := peakRSS(t) - rssBefore

	u := testenv.Usage(t, fd.log)
	t.Logf("body %d bytes, %d events, %d bytes stored (%.2f× the body), allocated %d MiB, peak RSS +%d MiB",
		len(body), u.Events, u.EventBytes, float64(u.EventBytes)/float64(len(body)), (after.TotalAlloc-before.TotalAlloc)>>20, rssGrowth>>20)
	if u.Events != uint64(len(items)) {
		t.Errorf("stored %d events, want %d", u.Events, len(items))
	}
	// Each event is its item's bytes, its typed form and an envelope of about 550 bytes (ids,
	// type, source, dedup key, times, NATS headers): linear in the body. Storing the delivery
	// with every item, as before, made this 1,500×.
	if limit := 5 * uint64(len(body)); u.EventBytes > limit {
		t.Errorf("stored %d bytes for a %d-byte delivery, want at most %d (5×)", u.EventBytes, len(body), limit)
	}
	if rssGrowth > 128<<20 {
		t.Errorf("peak RSS grew by %d MiB, want at most 128", rssGrowth>>20)
	}
	want := testenv.Items(t, body)
	for i, e := range testenv.Stored(t, fd.log) {
		m := e.GetMvmnt()
		if !bytes.Equal(e.GetRaw(), want[i]) || m.GetIndex() != uint32(i) || m.GetCount() != uint32(len(items)) || m.GetSentAt().AsTime().Format("15:04:05") != "14:31:00" {
			t.Fatalf("event %d: raw %q index %d/%d sent_at %v, want its own item's bytes %q, %d/%d, the delivery's sentAt",
				i, e.GetRaw(), m.GetIndex(), m.GetCount(), m.GetSentAt(), want[i], i, len(items))
		}
	}
}

// TestMvmntPartialDelivery sends a delivery whose items are valid, invalid and malformed: the
// valid items are stored, each bad item is quarantined on its own (once, also when MVMNT retries
// the same bytes), and the answer is 200 with one receipt per item, in order. A delivery whose
// envelope is unusable is 400, quarantined whole, once.
func TestMvmntPartialDelivery(t *testing.T) {
	t.Parallel()
	fd := start(t, nil)
	invalid := strings.Replace(mvmntItem(2), "660e8400-e29b-41d4-a716-000000000002", "not-a-uuid", 1)
	wrongShape := strings.Replace(mvmntItem(3), `"timestamp":"2025-01-15T14:30:00Z"`, `"timestamp":12`, 1)
	wrongData := `{"event":"CUSTOMER_CREATED","timestamp":"2025-01-15T14:30:00Z","data":{"id":"660e8400-e29b-41d4-a716-000000000004","name":{"not":"a string"}}}`
	body := mvmntDelivery(mvmntItem(1), invalid, wrongShape, wrongData, mvmntItem(5))
	type got struct{ Outcome, Field string }
	want := []got{
		{"OUTCOME_STORED", ""},
		{"OUTCOME_QUARANTINED", "events[1]"},
		{"OUTCOME_QUARANTINED", "events[2]"},
		{"OUTCOME_QUARANTINED", "events[3].data"},
		{"OUTCOME_STORED", ""},
	}
	var firstIDs []string
	for attempt := range 2 {
		code, r := postMvmnt(t, fd, body)
		if code != http.StatusOK {
			t.Fatalf("attempt %d: status %d, want 200", attempt, code)
		}
		var gotR []got
		var ids []string
		for _, rc := range r.Receipts {
			g := got{Outcome: rc.Outcome}
			if len(rc.Violations) > 0 {
				g.Field = rc.Violations[0].Field
			}
			if attempt == 1 && g.Outcome == "OUTCOME_STORED" {
				g.Outcome = "OUTCOME_STORED" // compared below as a duplicate
				if !rc.Duplicate {
					t.Errorf("retry: a stored item was not answered as a duplicate")
				}
			}
			gotR = append(gotR, g)
			ids = append(ids, rc.QuarantineEntryID)
		}
		if attempt == 1 {
			for i := range want {
				if want[i].Outcome == "OUTCOME_STORED" {
					want[i].Outcome = "OUTCOME_DUPLICATE"
				}
			}
			if diff := cmp.Diff(firstIDs, ids); diff != "" {
				t.Errorf("retry's quarantine entry ids differ from the first attempt's (-first +retry):\n%s", diff)
			}
		}
		firstIDs = ids
		if diff := cmp.Diff(want, gotR); diff != "" {
			t.Errorf("attempt %d: receipts (-want +got):\n%s", attempt, diff)
		}
	}
	stored := testenv.Stored(t, fd.log)
	if len(stored) != 2 || string(stored[0].GetRaw()) != mvmntItem(1) || string(stored[1].GetRaw()) != mvmntItem(5) {
		t.Errorf("stored %d events, want the two valid items with their own bytes", len(stored))
	}
	entries := testenv.Entries(t, fd.log)
	if len(entries) != 3 {
		t.Fatalf("quarantine holds %d entries, want 3 (one per bad item, none twice)", len(entries))
	}
	for i, e := range entries {
		wantRaw := []string{invalid, wrongShape, wrongData}[i]
		if string(e.GetRaw()) != wantRaw || e.ItemIndex == nil || e.GetItemIndex() != uint32(i+1) || e.GetDeliverySentAt() == nil || e.GetId() != firstIDs[i+1] {
			t.Errorf("entry %d: raw %q item %v sent_at %v id %s, want item %d's own bytes, its index and the delivery's sentAt", i, e.GetRaw(), e.ItemIndex, e.GetDeliverySentAt(), e.GetId(), i+1)
		}
	}

	// Envelopes that cannot be used: 400, quarantined whole, once across retries.
	for _, bad := range []string{`not json`, `{"sentAt":"2025-01-15T14:31:00Z"}`, `{"sentAt":"2025-01-15T14:31:00Z","events":[]}`, `{"events":[` + mvmntItem(9) + `]}`} {
		for range 2 {
			if code, _ := postMvmnt(t, fd, []byte(bad)); code != http.StatusBadRequest {
				t.Errorf("%s: status %d, want 400", bad, code)
			}
		}
	}
	if n := len(testenv.Entries(t, fd.log)); n != 3+4 {
		t.Errorf("quarantine holds %d entries, want 7: each unusable delivery once", n)
	}
	if n := len(testenv.Stored(t, fd.log)); n != 2 {
		t.Errorf("stored %d events after the unusable deliveries, want still 2", n)
	}
}

// digits is a JSON list of one-digit numbers of exactly n bytes ("[0,0,…,0]", n odd): the JSON
// whose typed form (google.protobuf.Value doubles) is largest for its size.
func digits(n int) string {
	if n%2 == 0 {
		return "[" + strings.Repeat("0,", (n-3)/2) + "0 ]"
	}
	return "[" + strings.Repeat("0,", (n-3)/2) + "0]"
}

// pad returns body grown to exactly size bytes by a list of digits in place of "PAD".
func pad(t *testing.T, body string, size int) []byte {
	t.Helper()
	n := size - (len(body) - len("PAD"))
	out := []byte(strings.Replace(body, "PAD", digits(n), 1))
	if len(out) != size {
		t.Fatalf("padded body: %d bytes, want %d", len(out), size)
	}
	return out
}

// TestBodiesAtTheLimit posts, on every route, a body of exactly the body limit built to be as
// large as possible once typed, with a trace context whose tracestate is the largest the W3C
// allows (32 entries of 256 bytes): each is stored (never 503 for its size) with its
// traceparent and a tracestate cut to 512 bytes; a malformed body at the limit is quarantined;
// one byte more is 413.
func TestBodiesAtTheLimit(t *testing.T) {
	t.Parallel()
	limit := int(config.Default().HTTP.BodyLimit)
	fd := start(t, nil)
	for _, tt := range []struct {
		name, provider, body string
		want                 int
	}{
		{"moveapi", "moveapi", `{"event_name":"job.state.completed","timestamp":"2023-09-04T10:58:06Z","detail":{"api_name":"move-ugc-api","client_id":"client-1","job_id":"j"},"pad":PAD}`, 200},
		{"movement", "movement", `{"topic":"call","event":"finished","call":{"id":1,"outcome":"answered"},"pad":PAD}`, 200},
		{"mvmnt_untyped_data", "mvmnt", `{"sentAt":"2025-01-15T14:31:00Z","events":[{"event":"SHIPMENT_BOOKED","timestamp":"2025-01-15T14:30:00Z","data":{"id":"660e8400-e29b-41d4-a716-446655440000","stops":PAD}}]}`, 200},
		{"mvmnt_diff_values", "mvmnt", `{"sentAt":"2025-01-15T14:31:00Z","events":[{"event":"SHIPMENT_UPDATED","timestamp":"2025-01-15T14:30:00Z","data":{"id":"660e8400-e29b-41d4-a716-446655440001"},"diff":[{"type":"UPDATE","key":"stops","value":PAD}]}]}`, 200},
		{"listener", "listener", `{"event_type":"incident.created","data":PAD}`, 200},
		{"malformed_at_limit", "mvmnt", `{"sentAt":"2025-01-15T14:31:00Z","events":PAD,`, 400},
	} {
		body := pad(t, tt.body, limit)
		r := signed(t, fd.url, tt.provider, body)
		r.Header.Set("Traceparent", incomingParent)
		r.Header.Set("Tracestate", largestTraceState())
		resp, out := do(t, r)
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %d bytes: status %d (%.200s), want %d", tt.name, len(body), resp.StatusCode, out, tt.want)
		}
		over := pad(t, tt.body, limit+1)
		if resp, _ := do(t, signed(t, fd.url, tt.provider, over)); resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("%s: %d bytes: status %d, want 413", tt.name, len(over), resp.StatusCode)
		}
	}
	stored := testenv.Stored(t, fd.log)
	if len(stored) != 5 {
		t.Errorf("stored %d events, want 5", len(stored))
	}
	for _, e := range stored {
		if len(e.GetRaw()) > limit || len(e.GetRaw()) < limit-300 {
			t.Errorf("event %s (%s): raw %d bytes, want its body's (about %d)", e.GetId(), e.GetType(), len(e.GetRaw()), limit)
		}
		if tc := e.GetTraceContext(); tc.GetTraceparent() != incomingParent || len(tc.GetTracestate()) > 512 {
			t.Errorf("event %s (%s): trace context %q with a tracestate of %d bytes, want %q and at most 512", e.GetId(), e.GetType(), tc.GetTraceparent(), len(tc.GetTracestate()), incomingParent)
		}
	}
	entries := testenv.Entries(t, fd.log)
	if len(entries) != 1 || len(entries[0].GetRaw()) != limit {
		t.Errorf("quarantine: %d entries, want the malformed body of %d bytes", len(entries), limit)
	}
}

// largestTraceState is a tracestate of 32 entries (the W3C's most), 256-byte values, with a few
// short ones among them.
func largestTraceState() string {
	entries := make([]string, 32)
	for i := range entries {
		v := strings.Repeat("v", 256)
		if i%8 == 0 {
			v = "short"
		}
		entries[i] = fmt.Sprintf("k%02d=%s", i, v)
	}
	return strings.Join(entries, ",")
}

// TestReceiptsMatchStorage checks that receipts and stored events agree: no 2xx answered
// "duplicate" for an event that is not stored.
func TestReceiptsMatchStorage(t *testing.T) {
	t.Parallel()
	fd := start(t, nil)
	var items []string
	for i := range 50 {
		items = append(items, mvmntItem(i%25)) // every item twice within the delivery
	}
	code, r := postMvmnt(t, fd, mvmntDelivery(items...))
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	stored := map[string]bool{}
	for _, e := range testenv.Stored(t, fd.log) {
		stored[e.GetId()] = true
	}
	dups := 0
	for i, rc := range r.Receipts {
		switch {
		case rc.Duplicate:
			dups++
		case !stored[rc.EventID]:
			t.Errorf("receipt %d: stored %s, but no such event is stored", i, rc.EventID)
		}
	}
	if len(stored) != 25 || dups != 25 {
		t.Errorf("stored %d events and answered %d duplicates, want 25 and 25", len(stored), dups)
	}
}

// TestDiskFullRecovers fills the file system of the event log under the real front door: while
// the log cannot store, webhooks are answered 503 with Retry-After (never 2xx); once space is
// freed, webhooks are taken again without a restart, and every 2xx is stored exactly once.
func TestDiskFullRecovers(t *testing.T) {
	t.Parallel()
	dir := tmpfs.Mount(t, "24m")
	fd := startOpts(t, nil, 0, func(o *eventlog.Options) { o.DataDir = filepath.Join(dir, "data") })
	filler := filepath.Join(dir, "filler")
	accepted := map[string]bool{}
	post := func(n int) int {
		body := mvmntDelivery(strings.Replace(mvmntItem(n), `"key":null`, `"key":null,"pad":"`+strings.Repeat("p", 32<<10)+`"`, 1))
		resp, out := do(t, signed(t, fd.url, "mvmnt", body))
		switch resp.StatusCode {
		case http.StatusOK:
			var r receipts
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatal(err)
			}
			accepted[r.Receipts[0].EventID] = true
		case http.StatusServiceUnavailable:
			if resp.Header.Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After")
			}
		default:
			t.Fatalf("webhook %d: %d %s, want 200 or 503", n, resp.StatusCode, out)
		}
		return resp.StatusCode
	}
	n := 0
	for ; n < 20; n++ {
		if post(n) != http.StatusOK {
			t.Fatalf("webhook %d refused before the disk was full", n)
		}
	}
	// A consumer group subscribed before the disk filled keeps receiving after the recovery.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sub, err := fd.events.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sub.Send(&hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Open_{Open: &hookstreamv1.SubscribeRequest_Open{Group: "through-full-disk", Start: &hookstreamv1.StartPosition{Policy: hookstreamv1.StartPosition_POLICY_ALL}, MaxInFlight: 1000}}})
	var mu sync.Mutex
	received := map[string]bool{}
	go func() {
		for {
			m, err := sub.Recv()
			if err != nil {
				return
			}
			var ack []string
			for _, ev := range m.GetEvents().GetEvents() {
				mu.Lock()
				received[ev.GetEvent().GetId()] = true
				mu.Unlock()
				ack = append(ack, ev.GetAckId())
			}
			if len(ack) > 0 {
				sub.Send(&hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Settle_{Settle: &hookstreamv1.SubscribeRequest_Settle{AckIds: ack}}})
			}
		}
	}()
	// The group has its first 20 before the disk fills.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		got := len(received)
		mu.Unlock()
		if got == 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the group received %d of the first 20 events", got)
		}
	}
	tmpfs.Fill(t, filler, 0)
	refused := 0
	for deadline := time.Now().Add(60 * time.Second); refused < 3 && time.Now().Before(deadline); n++ {
		if post(n) == http.StatusServiceUnavailable {
			refused++
		}
	}
	if refused < 3 {
		t.Fatalf("the disk is full and webhooks are still taken")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	recovered := false
	for deadline := time.Now().Add(60 * time.Second); !recovered && time.Now().Before(deadline); n++ {
		recovered = post(n) == http.StatusOK
		if !recovered {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if !recovered {
		t.Fatal("no webhook taken within 60 s of freeing the space")
	}
	for range 5 { // a few more after the recovery
		for post(n) != http.StatusOK {
			time.Sleep(100 * time.Millisecond)
		}
		n++
	}
	count := map[string]int{}
	for _, e := range testenv.Stored(t, fd.log) {
		count[e.GetId()]++
	}
	for id := range accepted {
		if count[id] != 1 {
			t.Errorf("event %s answered 200 is stored %d times, want once", id, count[id])
		}
	}
	// Every accepted event reaches the group that was subscribed all along.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if u := testenv.Usage(t, fd.log); u.Events == uint64(len(accepted)) {
			break
		}
	}
	time.Sleep(3 * time.Second)
	cancel()
	time.Sleep(200 * time.Millisecond)
	missing := 0
	mu.Lock()
	for id := range accepted {
		if !received[id] {
			missing++
		}
	}
	mu.Unlock()
	if missing > 0 {
		t.Errorf("%d of %d accepted events never reached the group subscribed through the full disk", missing, len(accepted))
	}
	t.Logf("%d webhooks answered 200, %d answered 503 while the disk was full, then taken again", len(accepted), refused)
}
