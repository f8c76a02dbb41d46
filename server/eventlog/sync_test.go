package eventlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func openAlways(t *testing.T) *Log {
	t.Helper()
	l, err := Open(context.Background(), DefaultOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if len(l.syncers) != 2 {
		t.Fatalf("embedded log with durability always has %d block syncers, want 2", len(l.syncers))
	}
	return l
}

func appendOne(t *testing.T, c *Committer, subject, id string, data []byte) Result {
	t.Helper()
	m := nats.NewMsg(subject)
	m.Header.Set(jetstream.MsgIDHeader, id)
	m.Data = data
	res, err := c.Append(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	return res[0]
}

// TestBlockSyncerLayout checks what blockSyncer relies on in the embedded server's file store:
// when an append is acknowledged, its bytes are in a block file the commit's sync covered, and a
// block created by the commit is covered with its directory. If nats-server changes its layout,
// this test fails instead of durability silently ending.
func TestBlockSyncerLayout(t *testing.T) {
	t.Parallel()
	l := openAlways(t)
	for i, stream := range []struct {
		c       *Committer
		subject string
	}{{l.events, EventsSubjectPrefix + ".test.x"}, {l.quarantine, QuarantineSubjectPrefix + ".test.x"}} {
		s := l.syncers[i]
		// Enough 64 KiB messages to fill more than one block (8 MiB each at most).
		payload := bytes.Repeat([]byte("p"), 64<<10)
		var blocks []string
		for n := range 200 {
			marker := fmt.Appendf(nil, "marker-%d-%d-", i, n)
			data := append(marker, payload...)
			if res := appendOne(t, stream.c, stream.subject, string(marker), data); res.Err != nil {
				t.Fatalf("append %d: %v", n, res.Err)
			}
			synced := s.lastSynced()
			found := false
			for _, path := range synced {
				if path == s.dir {
					continue
				}
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if bytes.Contains(b, marker) {
					found = true
					if !slices.Contains(blocks, path) {
						blocks = append(blocks, path)
						// A new block: its directory entry must have been synced too.
						if !slices.Contains(synced, s.dir) {
							t.Errorf("append %d went to new block %s but the sync did not cover %s: got %v", n, path, s.dir, synced)
						}
					}
				}
			}
			if !found {
				t.Fatalf("append %d acknowledged, but none of the synced files %v holds it", n, synced)
			}
		}
		if len(blocks) < 2 {
			t.Errorf("12.8 MiB went to %d block file(s) %v, want at least 2 to test a block change", len(blocks), blocks)
		}
	}
}

// TestSyncFailureIsUnavailable checks that an append whose commit could not be synced is never
// answered as stored.
func TestSyncFailureIsUnavailable(t *testing.T) {
	t.Parallel()
	l := openAlways(t)
	l.events.sync = newBlockSyncer(t.TempDir(), "$G", "NO_SUCH_STREAM").Sync
	res := appendOne(t, l.events, EventsSubjectPrefix+".test.x", "a", []byte("a"))
	if !errors.Is(res.Err, ErrUnavailable) {
		t.Errorf("append with a failing sync: got %+v, want ErrUnavailable", res)
	}
	// The file layout is the layout blockSyncer knows but holds no block: also an error.
	dir := t.TempDir()
	if err := os.MkdirAll(dir+"/$G/streams/EMPTY/msgs", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := newBlockSyncer(dir, "$G", "EMPTY").Sync(); !errors.Is(err, errNoBlocks) {
		t.Errorf("sync of a stream without blocks: got %v, want errNoBlocks", err)
	}
}

// TestBlockSyncerAfterPurge checks that appends stay durable, and are not refused, after the
// stream is purged and its block files replaced.
func TestBlockSyncerAfterPurge(t *testing.T) {
	t.Parallel()
	l := openAlways(t)
	subject := EventsSubjectPrefix + ".test.x"
	for n := range 3 {
		if res := appendOne(t, l.events, subject, fmt.Sprint("before-", n), []byte("before")); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	stream, err := l.js.Stream(context.Background(), EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Purge(context.Background()); err != nil {
		t.Fatal(err)
	}
	marker := []byte("after-purge-marker")
	if res := appendOne(t, l.events, subject, "after", marker); res.Err != nil {
		t.Fatalf("append after purge: %v", res.Err)
	}
	for _, path := range l.syncers[0].lastSynced() {
		if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, marker) {
			return
		}
	}
	t.Errorf("append after purge acknowledged, but none of the synced files %v holds it", l.syncers[0].lastSynced())
}

// TestBlockSyncerBlocksRenumbered checks that a sync after the blocks it knew are gone and
// lower-numbered ones took their place covers the new ones rather than failing.
func TestBlockSyncerBlocksRenumbered(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	s := newBlockSyncer(root, "$G", "S")
	write := func(name string) string {
		t.Helper()
		if err := os.MkdirAll(s.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		path := s.dir + "/" + name
		if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	old := write("5.blk")
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(old); err != nil {
		t.Fatal(err)
	}
	renumbered := write("1.blk")
	if err := s.Sync(); err != nil {
		t.Fatalf("sync after the blocks were renumbered: %v", err)
	}
	if got := s.lastSynced(); !slices.Contains(got, renumbered) || !slices.Contains(got, s.dir) {
		t.Errorf("synced %v, want %s and its directory", got, renumbered)
	}
}

// TestConsumerStateLayout checks what syncConsumers relies on: the position of a durable
// consumer of the events stream is a file under the stream's obs directory, which it syncs.
func TestConsumerStateLayout(t *testing.T) {
	t.Parallel()
	l := openAlways(t)
	ctx := context.Background()
	if res := appendOne(t, l.events, EventsSubjectPrefix+".test.x", "a", []byte("a")); res.Err != nil {
		t.Fatal(res.Err)
	}
	c, err := l.js.CreateConsumer(ctx, EventsStream, jetstream.ConsumerConfig{Durable: "group", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.Fetch(1)
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	obs := filepath.Join(streamDir(l.ns.StoreDir(), l.ns.GlobalAccount().Name, EventsStream), "obs")
	want := filepath.Join(obs, "group", "o.dat")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(want); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no consumer state file %s after an ack", want)
		}
	}
	synced, err := syncTree(obs)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(synced, want) {
		t.Errorf("syncing %s covered %v, want %s", obs, synced, want)
	}
}
