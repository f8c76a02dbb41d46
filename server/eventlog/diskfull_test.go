package eventlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookstream/hookstream/server/internal/tmpfs"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// bigMsg is a 64 KiB event whose dedup key is id and whose data starts with id.
func bigMsg(id string) *nats.Msg {
	m := nats.NewMsg(EventsSubjectPrefix + ".test.x")
	m.Header.Set(jetstream.MsgIDHeader, id)
	m.Data = append([]byte(id+"-"), bytes.Repeat([]byte("p"), 64<<10)...)
	return m
}

// appendWithin appends a 64 KiB event with dedup key id, giving up after d, and returns the
// error of the append or of its message.
func appendWithin(c *Committer, id string, d time.Duration) (Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	res, err := c.Append(ctx, bigMsg(id))
	if err != nil {
		return Result{}, err
	}
	return res[0], res[0].Err
}

// storedIDs returns how many times each dedup key is stored in stream, and at which sequence.
func storedIDs(t *testing.T, js jetstream.JetStream, stream string) (map[string]int, map[string]uint64) {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	counts, seqs := map[string]int{}, map[string]uint64{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("get %d: %v", seq, err)
		}
		id := m.Header.Get(jetstream.MsgIDHeader)
		if !bytes.HasPrefix(m.Data, []byte(id+"-")) {
			t.Errorf("sequence %d with dedup key %s holds data starting %q", seq, id, m.Data[:min(len(m.Data), 20)])
		}
		counts[id]++
		seqs[id] = seq
	}
	return counts, seqs
}

// checkStored checks that every acknowledged key is stored exactly once, at the sequence it
// was acknowledged with, and that no key is stored twice.
func checkStored(t *testing.T, js jetstream.JetStream, acked map[string]uint64) {
	t.Helper()
	counts, seqs := storedIDs(t, js, EventsStream)
	for id, seq := range acked {
		if got := counts[id]; got != 1 {
			t.Errorf("acknowledged %s is stored %d times, want 1", id, got)
		} else if seqs[id] != seq {
			t.Errorf("acknowledged %s is stored at sequence %d, want %d", id, seqs[id], seq)
		}
	}
	for id, n := range counts {
		if n > 1 {
			t.Errorf("%s is stored %d times, want at most 1", id, n)
		}
	}
}

// TestDiskFullRecovers fills the file system of an embedded log: appends fail with
// ErrUnavailable, at once while the log is known to be failing, and succeed again by themselves
// once space is freed, with every append acknowledged before still stored exactly once and the
// appends after recovery durable.
func TestDiskFullRecovers(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		durability Durability
		slack      int64 // bytes left free by the filler: appends fail at once, or after some
	}{
		{name: "always_no_slack", durability: DurabilityAlways},
		{name: "always_slack", durability: DurabilityAlways, slack: 300 << 10},
		{name: "os_no_slack", durability: DurabilityOS},
		{name: "os_slack", durability: DurabilityOS, slack: 300 << 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			testDiskFullRecovers(t, tt.durability, tt.slack)
		})
	}
}

func testDiskFullRecovers(t *testing.T, durability Durability, slack int64) {
	dataDir := tmpfs.Mount(t, "16m")
	o := DefaultOptions(dataDir)
	o.Durability, o.Logger = durability, testLogger(t)
	l, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })

	acked := map[string]uint64{}
	for n := range 20 {
		id := fmt.Sprint("before-", n)
		res, err := appendWithin(l.events, id, 15*time.Second)
		if err != nil {
			t.Fatalf("append %s: %v", id, err)
		}
		acked[id] = res.Sequence
	}

	// Producers append concurrently while the disk fills up, so that commits of several
	// messages are in flight when the store fails; each stops at its first failure.
	filler := filepath.Join(dataDir, "filler")
	tmpfs.Fill(t, filler, slack)
	const producers = 8
	var mu sync.Mutex
	var failed []string
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for n := range 50 {
				id := fmt.Sprintf("full-%d-%d", p, n)
				start := time.Now()
				res, err := appendWithin(l.events, id, 15*time.Second)
				mu.Lock()
				switch {
				case err == nil:
					acked[id] = res.Sequence // the last free bytes
				case errors.Is(err, ErrUnavailable):
					t.Logf("append %s on a full file system failed after %v: %v", id, time.Since(start), err)
					failed = append(failed, id)
				default:
					t.Errorf("append %s on a full file system: got %v, want ErrUnavailable", id, err)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
			t.Errorf("producer %d: 50 appends of 64 KiB succeeded on a full file system", p)
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("on the full file system %d appends failed, %d were acknowledged in all", len(failed), len(acked))

	// The log knows it is failing, and no probe can succeed while the disk is full: an append is
	// answered at once, well before the commit timeout (which the deadline is shorter than).
	if err := l.Healthy(); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Healthy on a full file system: got %v, want ErrUnavailable", err)
	}
	for n := range 3 {
		id := fmt.Sprint("failing-", n)
		start := time.Now()
		if _, err := appendWithin(l.events, id, 2*time.Second); !errors.Is(err, ErrUnavailable) {
			t.Errorf("append %s while the log is failing: got %v, want ErrUnavailable before the 2 s deadline", id, err)
		} else {
			t.Logf("append %s while the log is failing failed after %v", id, time.Since(start))
		}
		failed = append(failed, id)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	awaitRecovery(t, l, "space was freed", acked)

	// The producers retry what failed: each is stored once, or answered as a duplicate of what
	// the server stored before it failed.
	for _, id := range failed {
		res, err := appendWithin(l.events, id, 15*time.Second)
		if err != nil {
			t.Fatalf("retry of %s after recovery: %v", id, err)
		}
		acked[id] = res.Sequence
	}
	res, err := appendWithin(l.events, "after-synced", 15*time.Second)
	if err != nil {
		t.Fatalf("append after recovery: %v", err)
	}
	acked["after-synced"] = res.Sequence
	if durability == DurabilityAlways && !syncedHolds(t, l.syncers[0], []byte("after-synced-")) {
		// Acknowledged, so on disk: in a file its commit synced.
		t.Errorf("append after recovery acknowledged, but none of the synced files %v holds it", l.syncers[0].lastSynced())
	}
	if res := appendOne(t, l.quarantine, QuarantineSubjectPrefix+".test.x", "q", []byte("q")); res.Err != nil {
		t.Errorf("quarantine append after recovery: %v", res.Err)
	}
	checkStored(t, l.js, acked)

	// And all of it is there after a restart.
	l.Close()
	reopened, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reopened.Close() })
	checkStored(t, reopened.js, acked)
}

// testLogger sends a log's messages to t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, nil))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// syncedHolds reports whether one of the files s synced last holds marker.
func syncedHolds(t *testing.T, s *blockSyncer, marker []byte) bool {
	t.Helper()
	for _, path := range s.lastSynced() {
		if path == s.dir {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, marker) {
			return true
		}
	}
	return false
}

// awaitRecovery appends "after-<n>" until one append succeeds (recording it in acked) or 45 s
// have passed since it was called; every failure meanwhile must be ErrUnavailable. Then the log
// must say it is healthy.
func awaitRecovery(t *testing.T, l *Log, what string, acked map[string]uint64) {
	t.Helper()
	since := time.Now()
	for n := 0; ; n++ {
		if time.Since(since) > 45*time.Second {
			t.Fatalf("no append succeeded in the 45 s after %s (%d tried)", what, n)
		}
		id := fmt.Sprint("after-", n)
		res, err := appendWithin(l.events, id, 15*time.Second)
		if err == nil {
			t.Logf("append %s succeeded %v after %s", id, time.Since(since), what)
			acked[id] = res.Sequence
			break
		}
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("append %s after %s: got %v, want success or ErrUnavailable", id, what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := l.Healthy(); err != nil {
		t.Errorf("Healthy after an append succeeded: got %v, want nil", err)
	}
}
