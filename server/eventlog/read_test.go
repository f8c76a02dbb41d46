package eventlog

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookstream/hookstream/server/internal/natstest"
)

// stored is what a test knows it stored at one sequence.
type stored struct {
	subject string
	data    string
}

// page is one answer of read, as the tests compare it.
type page struct {
	Seqs []uint64
	Next uint64
}

// wantPages is what read must answer, page after page, for the messages of model: every match
// from from on, each page as full as maxMsgs and maxBytes let it be, the first match always.
func wantPages(model map[uint64]stored, last uint64, subjects []string, from uint64, maxMsgs, maxBytes int) []page {
	var matches []uint64
	for seq := max(from, 1); seq <= last; seq++ {
		m, ok := model[seq]
		if ok && (len(subjects) == 0 || matchesAny(m.subject, subjects)) {
			matches = append(matches, seq)
		}
	}
	var pages []page
	for len(matches) > 0 {
		var p page
		size := 0
		for len(matches) > 0 && len(p.Seqs) < maxMsgs && (len(p.Seqs) == 0 || size+len(model[matches[0]].data) <= maxBytes) {
			size += len(model[matches[0]].data)
			p.Seqs = append(p.Seqs, matches[0])
			matches = matches[1:]
		}
		if len(matches) > 0 {
			p.Next = matches[0]
		}
		pages = append(pages, p)
	}
	return pages
}

func matchesAny(subject string, filters []string) bool {
	for _, f := range filters {
		if server.SubjectMatchesFilter(subject, f) {
			return true
		}
	}
	return false
}

// readAll pages through stream with read from from until next is 0, checking every message
// against model and every page's bounds.
func readAll(t *testing.T, l *Log, stream string, model map[uint64]stored, subjects []string, from uint64, maxMsgs, maxBytes int) []page {
	t.Helper()
	var pages []page
	for {
		msgs, next, err := l.read(context.Background(), stream, subjects, from, maxMsgs, maxBytes)
		if err != nil {
			t.Fatalf("read from %d: %v", from, err)
		}
		p := page{Next: next}
		size := 0
		for _, m := range msgs {
			p.Seqs = append(p.Seqs, m.Sequence)
			size += len(m.Data)
			if got, want := (stored{m.Subject, string(m.Data)}), model[m.Sequence]; got != want {
				t.Errorf("sequence %d: got %+v, want %+v", m.Sequence, got, want)
			}
		}
		if len(msgs) > maxMsgs {
			t.Errorf("read from %d: got %d messages, want at most %d", from, len(msgs), maxMsgs)
		}
		if len(msgs) > 1 && size > maxBytes {
			t.Errorf("read from %d: got %d messages of %d bytes, want at most %d bytes", from, len(msgs), size, maxBytes)
		}
		if len(pages) > 1000 {
			t.Fatalf("read from %d: more than 1000 pages", from)
		}
		if len(msgs) > 0 || next != 0 {
			pages = append(pages, p)
		}
		if next == 0 {
			return pages
		}
		if next <= from {
			t.Fatalf("read from %d: next %d does not move on", from, next)
		}
		from = next
	}
}

// fillStream appends to stream n messages on mixed subjects under prefix, of sizes from 0 to
// 5,000 bytes, deletes every 11th, a run of 20 and the last one (so that the stream ends on a
// deleted sequence), and returns what is left.
func fillStream(t *testing.T, l *Log, stream, prefix string, n int) map[uint64]stored {
	t.Helper()
	providers := []string{"alpha", "beta", "gamma"}
	types := []string{"created", "updated.v1", "updated.v2"}
	model := map[uint64]stored{}
	var msgs []*nats.Msg
	for i := range n {
		subject := fmt.Sprintf("%s.%s.%s", prefix, providers[i%3], types[i/3%3])
		data := strings.Repeat("x", i%23*10)
		if i%97 == 0 {
			data = strings.Repeat("b", 5000) // bigger than a page's bytes in the bounded cases
		}
		m := nats.NewMsg(subject)
		m.Header.Set(jetstream.MsgIDHeader, fmt.Sprint(i))
		m.Data = []byte(data)
		msgs = append(msgs, m)
		model[uint64(i+1)] = stored{subject, data}
	}
	res, err := l.events.Append(context.Background(), msgs...)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil || r.Sequence != uint64(i+1) {
			t.Fatalf("append %d to %s: got %+v, want sequence %d", i, stream, r, i+1)
		}
	}
	st, err := l.js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= uint64(n); seq++ {
		if seq%11 == 0 || seq >= 200 && seq < 220 || seq == uint64(n) {
			if err := st.DeleteMsg(context.Background(), seq); err != nil {
				t.Fatal(err)
			}
			delete(model, seq)
		}
	}
	return model
}

// TestRead pages through a stream of messages on mixed subjects and sizes, with gaps, with the
// filters of a listing: the pages hold every match once, in order, each as full as its bounds
// let it be, and no consumer is left behind. The same runs on a stream without direct gets,
// where the leader answers every message (as when no replica serves direct gets).
func TestRead(t *testing.T) {
	t.Parallel()
	l, err := Open(context.Background(), DefaultOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	const noDirect = "READ_NO_DIRECT"
	if _, err := l.js.CreateStream(context.Background(), jetstream.StreamConfig{Name: noDirect, Subjects: []string{"nodirect.>"}}); err != nil {
		t.Fatal(err)
	}
	const n = 600
	for _, st := range []struct {
		name, stream, prefix string
	}{
		{"direct", EventsStream, EventsSubjectPrefix},
		{"leader", noDirect, "nodirect"},
	} {
		model := fillStream(t, l, st.stream, st.prefix, n)
		all := len(model)
		p := st.prefix
		alpha, created := p+".alpha.>", p+".*.created"
		for _, tt := range []struct {
			name     string
			subjects []string
			from     uint64
			maxMsgs  int
			maxBytes int
		}{
			{name: "all_in_one_page", maxMsgs: n, maxBytes: 1 << 20},
			{name: "all_in_one_exactly_full_page", maxMsgs: all, maxBytes: 1 << 20},
			{name: "all_in_pages_of_7", maxMsgs: 7, maxBytes: 1 << 20},
			{name: "all_in_pages_of_1", maxMsgs: 1, maxBytes: 1 << 20},
			{name: "full_wildcard", subjects: []string{">"}, maxMsgs: 50, maxBytes: 1 << 20},
			{name: "stream_wildcard", subjects: []string{p + ".>"}, maxMsgs: 50, maxBytes: 1 << 20},
			{name: "bounded_by_bytes", maxMsgs: 100, maxBytes: 2000},
			{name: "bounded_by_one_byte", maxMsgs: 100, maxBytes: 1},
			{name: "bounded_by_bytes_and_count", subjects: []string{alpha, created}, maxMsgs: 9, maxBytes: 700},
			{name: "one_provider", subjects: []string{alpha}, maxMsgs: 10, maxBytes: 1 << 20},
			{name: "one_subject", subjects: []string{p + ".beta.updated.v1"}, maxMsgs: 10, maxBytes: 1 << 20},
			{name: "two_providers_one_type", subjects: []string{p + ".alpha.created", p + ".gamma.created"}, maxMsgs: 10, maxBytes: 1 << 20},
			{name: "token_wildcards", subjects: []string{p + ".*.updated.*"}, maxMsgs: 13, maxBytes: 1 << 20},
			{name: "overlapping", subjects: []string{alpha, created, p + ".alpha.created", alpha}, maxMsgs: 10, maxBytes: 1 << 20},
			{name: "overlapping_partly", subjects: []string{created, p + ".alpha.*", p + ".*.updated.v2"}, maxMsgs: 25, maxBytes: 1 << 20},
			{name: "no_match", subjects: []string{p + ".nobody.>"}, maxMsgs: 10, maxBytes: 1 << 20},
			{name: "from_zero", from: 0, maxMsgs: 100, maxBytes: 1 << 20},
			{name: "from_middle", from: 301, subjects: []string{alpha, created}, maxMsgs: 10, maxBytes: 1 << 20},
			{name: "from_deleted", from: 205, maxMsgs: 10, maxBytes: 1 << 20},
			{name: "from_last", from: n - 1, maxMsgs: 10, maxBytes: 1 << 20},
			{name: "from_deleted_end", from: n, maxMsgs: 10, maxBytes: 1 << 20},
			{name: "from_past_end", from: n + 100, maxMsgs: 10, maxBytes: 1 << 20},
		} {
			t.Run(st.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				got := readAll(t, l, st.stream, model, tt.subjects, tt.from, tt.maxMsgs, tt.maxBytes)
				want := wantPages(model, n, tt.subjects, tt.from, tt.maxMsgs, tt.maxBytes)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("pages (-want +got):\n%s", diff)
				}
			})
		}
	}
	t.Cleanup(func() {
		// After the subtests: the listings made no consumer.
		for _, name := range []string{EventsStream, QuarantineStream, noDirect} {
			s, err := l.js.Stream(context.Background(), name)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.CachedInfo().State.Consumers; got != 0 {
				t.Errorf("stream %s has %d consumers after the listings, want 0", name, got)
			}
		}
	})
}

// TestReadEmpty lists streams with no message to list.
func TestReadEmpty(t *testing.T) {
	t.Parallel()
	l, err := Open(context.Background(), DefaultOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	// The quarantine stream stays empty; the events stream has had a message, now deleted.
	res, err := l.events.Append(context.Background(), nats.NewMsg(EventsSubjectPrefix+".alpha.created"))
	if err != nil || res[0].Err != nil {
		t.Fatalf("append: %v %+v", err, res)
	}
	stream, err := l.js.Stream(context.Background(), EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.DeleteMsg(context.Background(), res[0].Sequence); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		stream   string
		subjects []string
	}{
		{name: "never_written", stream: QuarantineStream},
		{name: "never_written_filtered", stream: QuarantineStream, subjects: []string{QuarantineSubjectPrefix + ".a.>", QuarantineSubjectPrefix + ".b.>"}},
		{name: "all_deleted", stream: EventsStream},
		{name: "all_deleted_filtered", stream: EventsStream, subjects: []string{EventsSubjectPrefix + ".alpha.>"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msgs, next, err := l.read(context.Background(), tt.stream, tt.subjects, 1, 10, 1000)
			if err != nil || len(msgs) != 0 || next != 0 {
				t.Errorf("read: got %d messages, next %d, error %v; want none, 0, nil", len(msgs), next, err)
			}
		})
	}
}

// TestReadErrors checks that read answers ErrUnavailable, never a short listing, when the
// server cannot answer, and refuses bounds that would make no progress.
func TestReadErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		down     bool
		maxMsgs  int
		maxBytes int
		want     error
	}{
		{name: "server_down", down: true, maxMsgs: 10, maxBytes: 1000, want: ErrUnavailable},
		{name: "zero_messages", maxMsgs: 0, maxBytes: 1000},
		{name: "zero_bytes", maxMsgs: 10, maxBytes: 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ns := natstest.Server(t)
			o := DefaultOptions("")
			o.URL = ns.ClientURL()
			l, err := Open(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			if _, err := l.events.Append(context.Background(), nats.NewMsg(EventsSubjectPrefix+".alpha.created")); err != nil {
				t.Fatal(err)
			}
			if tt.down {
				ns.Shutdown()
				ns.WaitForShutdown()
			}
			// A caller's deadline, shorter than the log's own timeouts, ends the wait for the server.
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			msgs, next, err := l.read(ctx, EventsStream, nil, 1, tt.maxMsgs, tt.maxBytes)
			if err == nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("read: got %d messages, next %d, error %v; want an error wrapping %v", len(msgs), next, err, tt.want)
			}
		})
	}
}

func TestCoveringSubjects(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		subjects []string
		want     []string
	}{
		{name: "none", want: []string{""}},
		{name: "full_wildcard", subjects: []string{"a.b", ">"}, want: []string{""}},
		{name: "one", subjects: []string{"a.b"}, want: []string{"a.b"}},
		{name: "twice", subjects: []string{"a.b", "a.b"}, want: []string{"a.b"}},
		{name: "disjoint", subjects: []string{"a.b", "a.c", "b.>"}, want: []string{"a.b", "a.c", "b.>"}},
		{name: "covered_by_tail_wildcard", subjects: []string{"a.b.c", "a.>", "a.*"}, want: []string{"a.>"}},
		{name: "covered_by_token_wildcard", subjects: []string{"a.b", "a.*", "a.*.c"}, want: []string{"a.*", "a.*.c"}},
		{name: "tail_wildcard_needs_a_token", subjects: []string{"a", "a.>"}, want: []string{"a", "a.>"}},
		{name: "token_wildcard_does_not_cover_tail", subjects: []string{"a.*", "a.>"}, want: []string{"a.>"}},
		{name: "overlapping_not_covered", subjects: []string{"a.*.c", "a.b.*"}, want: []string{"a.*.c", "a.b.*"}},
		{name: "covered_twice", subjects: []string{"a.*", "a.*", "a.b"}, want: []string{"a.*"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, coveringSubjects(tt.subjects)); diff != "" {
				t.Errorf("coveringSubjects(%q) (-want +got):\n%s", tt.subjects, diff)
			}
		})
	}
}

// clusterLog records what the cluster test appended: the subject of every acknowledged sequence.
// It is safe for concurrent use.
type clusterLog struct {
	mu      sync.Mutex
	subject map[uint64]string
	next    int // the next event's number, for its subject and dedup key
}

// events returns n new events on 20 subjects (4 providers × 5 types).
func (cl *clusterLog) events(n int) []*nats.Msg {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	var msgs []*nats.Msg
	for range n {
		i := cl.next
		cl.next++
		m := nats.NewMsg(fmt.Sprintf("%s.p%d.t%d", EventsSubjectPrefix, i%4, i/4%5))
		m.Header.Set(jetstream.MsgIDHeader, fmt.Sprint(i))
		m.Data = []byte(fmt.Sprintf(`{"n":%d}`, i))
		msgs = append(msgs, m)
	}
	return msgs
}

// add appends n new events in batches of 50.
func (cl *clusterLog) add(ctx context.Context, t *testing.T, l *Log, n int) {
	t.Helper()
	for ; n > 0; n -= 50 {
		if err := cl.append(ctx, l, cl.events(min(n, 50))); err != nil {
			t.Fatal(err)
		}
	}
}

// append appends msgs, retrying those the log could not take (during a leader election after a
// node stopped) until ctx ends.
func (cl *clusterLog) append(ctx context.Context, l *Log, msgs []*nats.Msg) error {
	for len(msgs) > 0 {
		res, err := l.events.Append(ctx, msgs...)
		switch {
		case errors.Is(err, ErrUnavailable):
			// The log is known to be failing (a leader election): it refuses at once; retry.
			select {
			case <-ctx.Done():
				return fmt.Errorf("appends not taken: %w", ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
			continue
		case err != nil:
			return err
		}
		var failed []*nats.Msg
		cl.mu.Lock()
		for i, r := range res {
			if r.Err != nil {
				// Append owns the messages it was given: a retry gets a copy.
				m := nats.NewMsg(msgs[i].Subject)
				m.Header = maps.Clone(msgs[i].Header)
				m.Data = msgs[i].Data
				failed = append(failed, m)
				continue
			}
			cl.subject[r.Sequence] = msgs[i].Subject
		}
		cl.mu.Unlock()
		msgs = failed
		if len(failed) > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("appends not taken: %w", ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// keepAppending appends from producers goroutines, each n events at a time every pause, until
// the function it returns is called, so that replicas keep following the leader while the
// listings run.
func (cl *clusterLog) keepAppending(ctx context.Context, t *testing.T, l *Log, producers, n int, pause time.Duration) (stop func()) {
	// Stopping lets the appends under way finish: one given up could be stored unrecorded.
	stopping := make(chan struct{})
	var wg sync.WaitGroup
	for range producers {
		wg.Go(func() {
			for {
				select {
				case <-stopping:
					return
				case <-time.After(pause):
				}
				if err := cl.append(ctx, l, cl.events(n)); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		})
	}
	return func() { close(stopping); wg.Wait() }
}

// lastAcked returns the highest sequence acknowledged so far.
func (cl *clusterLog) lastAcked() uint64 {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	var last uint64
	for seq := range cl.subject {
		last = max(last, seq)
	}
	return last
}

// acked returns the sequences from from on acknowledged so far whose subject matches one of
// subjects.
func (cl *clusterLog) acked(subjects []string, from uint64) map[uint64]bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	out := map[uint64]bool{}
	for seq, subject := range cl.subject {
		if seq >= from && (len(subjects) == 0 || matchesAny(subject, subjects)) {
			out[seq] = true
		}
	}
	return out
}

// listing lists the events stream of l matching subjects from sequence from on, to the end or,
// when upTo is not 0, until it has passed upTo, and returns the sequences listed, in the order
// listed, and how many times a page was retried for ErrUnavailable.
type listing func(ctx context.Context, l *Log, subjects []string, from, upTo uint64) (seqs []uint64, retries int, err error)

// listRead is the listing by read, in pages of 500, retrying a page as a client retries a 503.
// A listing to the end ends when a page reaches the stream's end as it was when the page began,
// which appends faster than the listing would push back forever: upTo bounds it then.
func listRead(ctx context.Context, l *Log, subjects []string, from, upTo uint64) ([]uint64, int, error) {
	var seqs []uint64
	retries := 0
	for {
		msgs, next, err := l.read(ctx, EventsStream, subjects, from, 500, 1<<20)
		if errors.Is(err, ErrUnavailable) && ctx.Err() == nil {
			retries++
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if err != nil {
			return nil, retries, fmt.Errorf("read from %d: %w", from, err)
		}
		for _, m := range msgs {
			seqs = append(seqs, m.Sequence)
		}
		if next == 0 || upTo != 0 && next > upTo {
			return seqs, retries, nil
		}
		from = next
	}
}

// checkListing fails t unless seqs holds every sequence of want once, in order.
func checkListing(t *testing.T, name string, want map[uint64]bool, seqs []uint64) {
	t.Helper()
	listed := 0
	for i, seq := range seqs {
		if i > 0 && seq <= seqs[i-1] {
			t.Errorf("%s: sequence %d listed after %d", name, seq, seqs[i-1])
		}
		if want[seq] {
			listed++
		}
	}
	if listed != len(want) {
		t.Errorf("%s: got %d of the %d events acknowledged before the listing began, want all", name, listed, len(want))
	}
}

// listed is what a listing of the cluster test listed, checked against what was stored once
// the appends are over: while they run, an event can be listed before its append has returned.
type listed struct {
	name     string
	subjects []string
	seqs     []uint64
}

// checkListed fails t unless every listing listed nothing but stored events matching its
// subjects.
func checkListed(t *testing.T, cl *clusterLog, listings []listed) {
	t.Helper()
	stored := map[string]map[uint64]bool{}
	for _, l := range listings {
		key := strings.Join(l.subjects, " ")
		if stored[key] == nil {
			stored[key] = cl.acked(l.subjects, 0)
		}
		for _, seq := range l.seqs {
			if !stored[key][seq] {
				t.Errorf("%s: sequence %d listed, not a stored event matching %q", l.name, seq, l.subjects)
			}
		}
	}
}

// readerVia returns a log that reads through the cluster node at url only: the node's own replica
// answers its clients' direct gets first.
func readerVia(t *testing.T, url string) *Log {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &Log{nc: nc, js: js}
}

// TestReadCluster lists the events of a real 3-node cluster (3 replicas, direct gets allowed):
// settled; then restarting the nodes one after the other, appending while each is down and while
// the listings run, through the restarted node at once, whose replica catches up; then the newest
// events through each node while appends run flat out, so that followers answer direct gets from
// behind the leader. Every listing holds every event acknowledged before it began, once, in
// order.
func TestReadCluster(t *testing.T) {
	t.Parallel()
	clusterListings(t, listRead)
}

// clusterListings is TestReadCluster with the way to list as a parameter, so that other ways
// (an ordered consumer a page, say) can be put through the same cluster.
func clusterListings(t *testing.T, list listing) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := natstest.StartCluster(t, 3)
	o := DefaultOptions("")
	o.URL, o.Replicas = c.URLs(), 3
	l, err := Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	c.WaitStream(EventsStream)
	cl := &clusterLog{subject: map[uint64]string{}}
	start := time.Now()
	cl.add(ctx, t, l, 20000)
	t.Logf("appended 20000 events in %v", time.Since(start))

	// One provider's events and every provider's events of one type: filters that overlap.
	filtered := []string{EventsSubjectPrefix + ".p1.>", EventsSubjectPrefix + ".*.t3", EventsSubjectPrefix + ".p1.t3"}
	var mu sync.Mutex
	var listings []listed
	// lists lists at least times times, one after the other, and then until until; from returns
	// where each listing starts. A listing ends at the end of the stream, or with tail after the
	// last event acknowledged when it began.
	lists := func(name string, via *Log, subjects []string, from func() uint64, tail bool, times int, until time.Time) {
		for i := 0; i < times || time.Now().Before(until); i++ {
			name := fmt.Sprintf("%s, listing %d", name, i+1)
			start := from()
			want := cl.acked(subjects, start)
			var upTo uint64
			if tail {
				upTo = cl.lastAcked()
			}
			began := time.Now()
			seqs, retries, err := list(ctx, via, subjects, start, upTo)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				return
			}
			checkListing(t, name, want, seqs)
			mu.Lock()
			listings = append(listings, listed{name, subjects, seqs})
			mu.Unlock()
			if i > 0 && time.Now().Before(until) {
				continue // of many listings, the first and the last are logged
			}
			t.Logf("%s: %d listed from %d, %d acknowledged before, %d pages retried, %v", name, len(seqs), start, len(want), retries, time.Since(began).Round(time.Millisecond))
		}
	}
	first := func() uint64 { return 1 }
	lists("settled", l, nil, first, false, 1, time.Time{})
	lists("settled, filtered", l, filtered, first, false, 1, time.Time{})

	var stop func()
	for k := range 3 {
		c.Stop(k)
		cl.add(ctx, t, l, 3000) // node k has to catch these up
		stop = cl.keepAppending(ctx, t, l, 1, 10, 50*time.Millisecond)
		c.Start(k)
		// Through node k, whose replica joins the direct gets on a 2 s tick once 90% caught up
		// (nats-server's monitorStream), listings go on past that; a filtered one through any
		// node runs alongside.
		restarted, via := time.Now(), readerVia(t, c.URL(k))
		var wg sync.WaitGroup
		wg.Go(func() {
			lists(fmt.Sprintf("node %d restarted, through it", k), via, nil, first, false, 2, restarted.Add(3*time.Second))
		})
		wg.Go(func() {
			lists(fmt.Sprintf("node %d restarted, filtered", k), l, filtered, first, false, 1, time.Time{})
		})
		wg.Wait()
		stop()
		c.WaitStream(EventsStream) // node k caught up before the next one stops
	}

	// The newest events while appends run flat out: a follower's store lags the leader's by the
	// appends in flight.
	stop = cl.keepAppending(ctx, t, l, 8, 50, 0)
	newest := func() uint64 { return max(cl.lastAcked(), 200) - 200 }
	for k := range 3 {
		lists(fmt.Sprintf("under load, newest through node %d", k), readerVia(t, c.URL(k)), nil, newest, true, 2, time.Now().Add(time.Second))
	}
	stop()
	checkListed(t, cl, listings)
}

// readCovering is the other way to read several subject filters: one covering wildcard, with
// the filters applied here. BenchmarkRead compares it with read.
func readCovering(ctx context.Context, l *Log, stream string, subjects []string, from uint64, maxMsgs, maxBytes int) ([]*jetstream.RawStreamMsg, uint64, error) {
	var out []*jetstream.RawStreamMsg
	for {
		msgs, next, err := l.read(ctx, stream, nil, from, maxMsgs, maxBytes)
		if err != nil {
			return nil, 0, err
		}
		for _, m := range msgs {
			if matchesAny(m.Subject, subjects) {
				if len(out) == maxMsgs {
					return out, m.Sequence, nil
				}
				out = append(out, m)
			}
		}
		if next == 0 {
			return out, 0, nil
		}
		from = next
	}
}

// BenchmarkRead lists 100,000 events of 200 bytes on 100 subjects (10 providers × 10 types) in
// pages of 500, with filters of several selectivities, by read (one direct get filter a
// subject, merged) and by readCovering (one covering filter, matched here). ns/listed is the
// cost of a listed event.
func BenchmarkRead(b *testing.B) {
	o := DefaultOptions(b.TempDir())
	o.Durability = DurabilityOS
	l, err := Open(context.Background(), o)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	var msgs []*nats.Msg
	for i := range 100000 {
		m := nats.NewMsg(fmt.Sprintf("%s.p%d.t%d", EventsSubjectPrefix, i%10, i/10%10))
		m.Data = make([]byte, 200)
		if msgs = append(msgs, m); len(msgs) == MaxBatch {
			if _, err := l.events.Append(context.Background(), msgs...); err != nil {
				b.Fatal(err)
			}
			msgs = nil
		}
	}
	p := EventsSubjectPrefix
	for _, f := range []struct {
		name     string
		subjects []string
	}{
		{"all", nil},
		{"5_providers_1_in_2", []string{p + ".p0.>", p + ".p1.>", p + ".p2.>", p + ".p3.>", p + ".p4.>"}},
		{"2_providers_1_in_5", []string{p + ".p0.>", p + ".p1.>"}},
		{"overlapping_1_in_5", []string{p + ".p0.>", p + ".*.t3", p + ".p0.t3"}},
		{"2_types_1_in_50", []string{p + ".p0.t1", p + ".p1.t2"}},
		{"1_type_1_in_100", []string{p + ".p3.t7"}},
	} {
		for _, v := range []struct {
			name string
			read func(context.Context, string, []string, uint64, int, int) ([]*jetstream.RawStreamMsg, uint64, error)
		}{
			{"read", l.read},
			{"covering", func(ctx context.Context, stream string, subjects []string, from uint64, maxMsgs, maxBytes int) ([]*jetstream.RawStreamMsg, uint64, error) {
				return readCovering(ctx, l, stream, subjects, from, maxMsgs, maxBytes)
			}},
		} {
			if v.name == "covering" && f.subjects == nil {
				continue
			}
			b.Run(f.name+"/"+v.name, func(b *testing.B) {
				listed := 0
				for b.Loop() {
					listed = 0
					for from := uint64(1); ; {
						msgs, next, err := v.read(context.Background(), EventsStream, f.subjects, from, 500, 1<<20)
						if err != nil {
							b.Fatal(err)
						}
						listed += len(msgs)
						if next == 0 {
							break
						}
						from = next
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(listed), "ns/listed")
			})
		}
	}
}
