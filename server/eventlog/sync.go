package eventlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// errNoBlocks means a stream's message directory holds no block file after an append: the
// embedded server's file layout is not the one blockSyncer knows, so durability cannot be
// promised.
var errNoBlocks = errors.New("no message block files")

// blockSyncer makes the appends of one stream of the embedded server durable by fsyncing the
// stream's message block files itself, once per commit, instead of having the server fsync once
// per message (server option sync_always).
//
// It relies on two properties of the embedded server's file store for a stream with one replica
// (nats-server v2.15, filestore.go): a publish is acknowledged only after the message was written
// to its block file with write(2) (flush in place, since asynchronous flushing is only used with
// replicas); and the messages live in files <index>.blk of the stream's msgs directory, the
// highest index being the block written to. Writes go to the last block, so after a sync only
// that block and the blocks created after it can hold unsynced data. TestBlockSyncerLayout checks
// both properties against the server in go.mod; a stream directory without any block file is an
// error, never a silent success.
//
// Sync is safe for concurrent use; concurrent callers share one fsync when they can.
type blockSyncer struct {
	dir string // the stream's msgs directory

	run sync.Mutex // held while the files are synced

	mu       sync.Mutex // guards the fields below
	started  uint64     // syncs started
	finished uint64     // syncs finished
	err      error      // of the last finished sync
	from     int        // lowest block index that may hold unsynced writes
	synced   []string   // files of the last sync, for tests
}

func newBlockSyncer(storeDir, account, stream string) *blockSyncer {
	return &blockSyncer{dir: filepath.Join(streamDir(storeDir, account, stream), "msgs")}
}

// streamDir is where the embedded server keeps a stream's files.
func streamDir(storeDir, account, stream string) string {
	return filepath.Join(storeDir, account, "streams", stream)
}

// Sync returns once every message acknowledged before the call is on disk. Errors wrap the
// file system's error or errNoBlocks.
func (s *blockSyncer) Sync() error {
	s.mu.Lock()
	target := s.started + 1 // the next sync to start covers every write before this call
	s.mu.Unlock()

	s.run.Lock()
	defer s.run.Unlock()
	s.mu.Lock()
	if s.finished >= target {
		err := s.err
		s.mu.Unlock()
		return err
	}
	s.started++
	n, from := s.started, s.from
	s.mu.Unlock()

	last, synced, err := s.syncFrom(from)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.finished, s.err, s.synced = n, err, synced
	if err == nil {
		s.from = last
	}
	return err
}

// syncFrom fsyncs the block files with an index of at least from and, when one of them is new
// since the last sync, the directory that names them. It returns the highest index.
func (s *blockSyncer) syncFrom(from int) (int, []string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, nil, fmt.Errorf("sync stream files: %w", err)
	}
	last := -1
	var synced []string
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".blk")
		if !ok {
			continue
		}
		index, err := strconv.Atoi(name)
		if err != nil || index < from {
			continue
		}
		last = max(last, index)
		path := filepath.Join(s.dir, e.Name())
		if err := fsync(path); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // removed by retention or compaction since ReadDir
			}
			return 0, nil, fmt.Errorf("sync stream files: %w", err)
		}
		synced = append(synced, path)
	}
	if last < 0 {
		if from > 0 {
			// Every block from the last sync on is gone (a purge, say): sync whatever is there.
			return s.syncFrom(0)
		}
		return 0, nil, fmt.Errorf("sync stream files: %w in %s", errNoBlocks, s.dir)
	}
	if last > from {
		// A block was created: its name must be durable too.
		if err := fsync(s.dir); err != nil {
			return 0, nil, fmt.Errorf("sync stream files: %w", err)
		}
		synced = append(synced, s.dir)
	}
	return last, synced, nil
}

// lastSynced returns the files the last sync covered.
func (s *blockSyncer) lastSynced() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.synced
}

func fsync(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncTree fsyncs every file and directory under root and returns their paths. A root that does
// not exist is nothing to sync.
func syncTree(root string) ([]string, error) {
	var synced []string
	err := filepath.WalkDir(root, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := fsync(path); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("sync %s: %w", path, err)
		}
		synced = append(synced, path)
		return nil
	})
	return synced, err
}

// consumerSyncInterval is how often the consumers' positions are fsynced with durability
// "always".
const consumerSyncInterval = time.Second

// syncConsumers fsyncs the consumer state of the streams whose directories are given, every
// interval until ctx ends. With its per-message fsync off, the embedded server writes a
// consumer's position (delivered, acknowledged) without fsync, so a power loss could take back
// the acks of the kernel's writeback delay (about 30 s); with this, of about interval. Either way
// the events come again as redeliveries; none is lost. Errors go to log.
func syncConsumers(ctx context.Context, streamDirs []string, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, dir := range streamDirs {
				if _, err := syncTree(filepath.Join(dir, "obs")); err != nil {
					log.Error("eventlog: sync consumer state", "err", err)
				}
			}
		}
	}
}
