package eventlog

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	// checkInterval is how often a healthy log asks the embedded server for its own view of the
	// streams, and the connection whether it is up. A stream that failed to write (a full disk)
	// does not answer the publish at all (stream.go, processJetStreamMsg), so without this the
	// first sign of it would be a commit timing out after commitTimeout.
	checkInterval = time.Second
	// probeInterval is how long a failing log waits between two probes.
	probeInterval = time.Second
	// maxRestartInterval is the longest a failing log waits between two restarts of the embedded
	// JetStream: the wait doubles from probeInterval after each restart that did not clear the
	// server's error (a stream that cannot be recovered, say), since each restart recovers every
	// stream from its files.
	maxRestartInterval = time.Minute
	// probeTimeout bounds the requests of one probe.
	probeTimeout = 5 * time.Second
	// probeSize is how much a probe writes to the embedded server's store to see that it has
	// space again: the default body limit, so that a webhook of any size is likely to fit.
	probeSize = 1 << 20
	// probeFile is the probe's file, next to the store (not in it: the server takes every entry
	// of its store directory for an account).
	probeFile = ".eventlog-probe"
)

// JetStream error codes that say the store cannot take appends at all, whatever the message:
// out of resources, or JetStream off.
const (
	errCodeAccountResourcesExceeded = 10002
	errCodeInsufficientResources    = 10023
	errCodeMemoryResourcesExceeded  = 10028
	errCodeNotEnabledForAccount     = 10039
	errCodeStorageResourcesExceeded = 10047
	errCodeNotEnabled               = 10076
)

var errDisconnected = errors.New("not connected to nats")

// health is what the log knows of whether appends can succeed: a log is healthy until an append,
// a sync or a check fails in a way that says the store cannot take appends, then failing until
// a probe finds it can again. While failing, appends are refused at once instead of each waiting
// for commitTimeout.
type health struct {
	log   *slog.Logger
	check func() error                // run while healthy, every checkInterval
	probe func(context.Context) error // run while failing, every probeInterval; nil means healthy again

	mu     sync.Mutex // serialises changes of state
	state  atomic.Pointer[healthState]
	closed atomic.Bool
	wake   chan struct{} // a failure wakes the loop to probe at once
	stop   context.CancelFunc
	done   chan struct{} // closed when the loop has returned
}

// healthState is one period of health or failure. It is never changed, only replaced.
type healthState struct {
	err error // nil when healthy, else wraps ErrUnavailable
	// ctx is the parent of the commits made in this state. It is cancelled, with the cause, when
	// the log fails: commits waiting for acks that will not come give up at once.
	ctx    context.Context
	cancel context.CancelCauseFunc
	since  time.Time
}

func newHealthState(err error) *healthState {
	ctx, cancel := context.WithCancelCause(context.Background())
	if err != nil {
		cancel(err)
	}
	return &healthState{err: err, ctx: ctx, cancel: cancel, since: time.Now()}
}

func newHealth(log *slog.Logger) *health {
	h := &health{log: log, wake: make(chan struct{}, 1)}
	h.state.Store(newHealthState(nil))
	return h
}

// current returns the state commits and appends go by.
func (h *health) current() *healthState { return h.state.Load() }

// fail marks the log failing with cause, unless it is no longer in state st: a commit started
// before a recovery says nothing of the log after it.
func (h *health) fail(st *healthState, cause error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state.Load() != st || st.err != nil {
		return
	}
	err := cause
	if !errors.Is(err, ErrUnavailable) {
		err = fmt.Errorf("%w: %w", ErrUnavailable, cause)
	}
	h.state.Store(newHealthState(err))
	st.cancel(err)
	h.log.Error("eventlog: failing, appends are refused until a probe succeeds", "err", err)
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// observe marks the log failing when one of results, of a commit made in state st, failed for
// a reason that is the store's, not the message's.
func (h *health) observe(st *healthState, results []*Result) {
	for _, r := range results {
		if r.Err != nil && isLogFault(r.Err) {
			h.fail(st, r.Err)
			return
		}
	}
}

// isLogFault reports whether err, of an append, says the store cannot take appends rather than
// this message (too large, say): of the server's answers, those about resources or JetStream
// being off; of the client's own errors, all but those about the message; and every other error
// (a timeout, no responders, a lost connection, a failed sync).
func isLogFault(err error) bool {
	for _, msgErr := range []error{nats.ErrMaxPayload, nats.ErrBadSubject, nats.ErrInvalidMsg, jetstream.ErrAsyncPublishReplySubjectSet} {
		if errors.Is(err, msgErr) {
			return false
		}
	}
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return true
	}
	switch apiErr.ErrorCode {
	case errCodeAccountResourcesExceeded, errCodeInsufficientResources, errCodeMemoryResourcesExceeded,
		errCodeNotEnabledForAccount, errCodeStorageResourcesExceeded, errCodeNotEnabled:
		return true
	}
	return false
}

// start runs the loop that checks a healthy log and probes a failing one, until close.
func (h *health) start() {
	ctx, stop := context.WithCancel(context.Background())
	h.stop, h.done = stop, make(chan struct{})
	go func() {
		defer close(h.done)
		h.run(ctx)
	}()
}

func (h *health) run(ctx context.Context) {
	t := time.NewTimer(checkInterval)
	defer t.Stop()
	var lastProbeErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		case <-t.C:
		}
		st := h.current()
		if st.err == nil {
			if err := h.check(); err != nil {
				h.fail(st, err)
			}
			t.Reset(checkInterval)
			continue
		}
		err := h.probe(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if msg := err.Error(); msg != lastProbeErr {
				h.log.Warn("eventlog: probe failed, appends are still refused", "err", err)
				lastProbeErr = msg
			}
			t.Reset(probeInterval)
			continue
		}
		lastProbeErr = ""
		h.mu.Lock()
		if h.state.Load() == st {
			h.state.Store(newHealthState(nil))
		}
		h.mu.Unlock()
		h.log.Info("eventlog: recovered, appends are taken again", "failing_for", time.Since(st.since).Round(time.Millisecond))
		t.Reset(checkInterval)
	}
}

// close stops the loop and waits for it.
func (h *health) close() {
	h.closed.Store(true)
	if h.stop != nil {
		h.stop()
		<-h.done
	}
}

// probeState is what the probes of a log keep from one to the next.
type probeState struct {
	storeDir     string        // the embedded server's: it has none while its JetStream restarts
	restartWait  time.Duration // since the last restart of the embedded JetStream
	restartAfter time.Time     // no restart before
	failed       int           // probes failed in a row through the connected server (external)
}

// Healthy returns nil while appends are expected to succeed. Otherwise it returns an error
// wrapping ErrUnavailable and the cause: after Close (with ErrClosed), or while the log is failing
// — an append, a sync or a check of the server failed in a way that says the store cannot take
// appends (disk full, JetStream off, server unreachable, no quorum) and no probe has since found
// that it can again. While it returns an error, appends fail at once with it. The log probes every
// second by itself; with the embedded server a probe restarts JetStream when the server keeps a
// stream's write error. It is safe for concurrent use and cheap (an atomic load).
func (l *Log) Healthy() error {
	if l.health.closed.Load() {
		return fmt.Errorf("%w: %w", ErrUnavailable, ErrClosed)
	}
	return l.health.current().err
}

// watchHealth starts checking and probing the log.
func (l *Log) watchHealth() {
	if l.ns != nil {
		l.probes.storeDir = l.ns.StoreDir()
	}
	l.health.check = l.check
	l.health.probe = l.probe
	l.health.start()
}

// check is the health check of a healthy log: the connection, and the embedded server's own
// view or, on an external server, the events stream's leader.
func (l *Log) check() error {
	if !l.nc.IsConnected() {
		return errDisconnected
	}
	if l.ns != nil {
		return l.serverHealth()
	}
	// A cluster that lost its quorum keeps the connection up: ask whether the events stream has a
	// leader, so that readiness turns before an append waits out its commit timeout.
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	_, err := l.leaderInfo(ctx, EventsStream)
	return err
}

// checkTimeout bounds the stream info request of a healthy log's check on an external server.
const checkTimeout = 2 * time.Second

// serverHealth returns the embedded server's own view of the account's streams: whether
// JetStream is on, and whether a stream holds a write error. The server keeps a stream's write
// error, and refuses (without answering) every later publish to it, until its JetStream is
// restarted (filestore.go, setWriteErr and StoreMsg).
func (l *Log) serverHealth() error {
	h := l.ns.Healthz(&server.HealthzOptions{Account: l.ns.GlobalAccount().Name})
	if h.StatusCode != http.StatusOK {
		return fmt.Errorf("nats-server: %s", h.Error)
	}
	return nil
}

// probe returns nil when the log can take appends again, repairing what it can: with the
// embedded server, once its store has space, it restarts JetStream if the server keeps a write
// error; with an external server, it only asks for the streams (a cluster recovers by itself, a
// lone server with a write error needs its operator). Only the health loop calls it.
func (l *Log) probe(ctx context.Context) error {
	if !l.nc.IsConnected() {
		return errDisconnected
	}
	if l.ns == nil {
		err := l.probeStreams(ctx)
		l.moveOnIfStuck(err)
		return err
	}
	if l.ns != nil {
		if err := writeProbe(filepath.Join(filepath.Dir(l.probes.storeDir), probeFile)); err != nil {
			return err
		}
		if err := l.serverHealth(); err != nil {
			if time.Now().Before(l.probes.restartAfter) {
				return err
			}
			l.probes.restartWait = min(max(2*l.probes.restartWait, probeInterval), maxRestartInterval)
			l.probes.restartAfter = time.Now().Add(l.probes.restartWait)
			if err := l.restartJetStream(); err != nil {
				return err
			}
			// The server recovered what its files hold, which can include messages never
			// acknowledged: a retry of one is answered as a duplicate, so they must be on disk
			// before that answer can be given.
			if _, err := syncTree(l.probes.storeDir); err != nil {
				return fmt.Errorf("sync store after restart: %w", err)
			}
			if err := l.serverHealth(); err != nil {
				return err
			}
		}
	}
	return l.probeStreams(ctx)
}

// stuckProbes is how many probes in a row may fail through one server of an external cluster
// before the connection moves to another: a node can keep a stale view of the cluster after a
// restart (a stream without a leader, publishes without responders) while the others serve.
const stuckProbes = 2

// moveOnIfStuck counts the failed probes through the connected server, and after stuckProbes
// of them reconnects to another server of the cluster.
func (l *Log) moveOnIfStuck(err error) {
	if err == nil {
		l.probes.failed = 0
		return
	}
	if l.probes.failed++; l.probes.failed < stuckProbes {
		return
	}
	l.probes.failed = 0
	url := l.nc.ConnectedUrlRedacted()
	if rerr := l.nc.ForceReconnect(); rerr == nil {
		l.health.log.Warn("eventlog: probes keep failing through this server: connecting to another", "server", url, "err", err)
	}
}

// probeStreams asks for each stream's info, and publishes to it as appends do.
func (l *Log) probeStreams(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	for _, s := range []struct{ name, prefix string }{{EventsStream, EventsSubjectPrefix}, {QuarantineStream, QuarantineSubjectPrefix}} {
		if _, err := l.leaderInfo(ctx, s.name); err != nil {
			return err
		}
		if err := l.probePublish(ctx, s.name, s.prefix); err != nil {
			return err
		}
	}
	l.probes.restartWait = 0
	return nil
}

// probeExpectedStream is the stream a probe's publish expects: none has this name, so the
// stream refuses the publish (errCodeWrongStream) and stores nothing.
const probeExpectedStream = "HOOKSTREAM_PROBE_NEVER"

// errCodeWrongStream is JetStream's answer to a publish that expects another stream.
const errCodeWrongStream = 10060

// probePublish publishes to stream the way appends do, expecting another stream: the stream's
// leader answers it with a refusal, which proves that publishes reach it. Stream info alone does
// not: the JetStream API is served on every server, while a publish follows the interest the
// servers propagate to each other: a cluster node that lost its routes' interest after a restart
// answers "no responders" (see probe).
func (l *Log) probePublish(ctx context.Context, stream, prefix string) error {
	_, err := l.js.Publish(ctx, prefix+".hookstream-probe", nil, jetstream.WithExpectStream(probeExpectedStream), jetstream.WithRetryAttempts(0))
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeWrongStream:
		return nil
	case err == nil:
		return fmt.Errorf("publish to %s: a probe expecting another stream was stored", stream)
	default:
		return fmt.Errorf("publish to %s: %w", stream, err)
	}
}

// restartJetStream restarts the embedded server's JetStream, which recovers the streams from
// their files, without the write errors the old ones kept. The rest of the server, and so the
// log's connection, stays up.
func (l *Log) restartJetStream() error {
	l.health.log.Warn("eventlog: restarting the embedded JetStream to clear its write error")
	if l.ns.JetStreamEnabled() {
		if err := l.ns.ShutdownJetStream(); err != nil {
			return fmt.Errorf("shut jetstream down: %w", err)
		}
	}
	// The configuration the server starts with: the store directory given in its options, the
	// limits derived from the disk (server.go, Start).
	if err := l.ns.EnableJetStream(&server.JetStreamConfig{StoreDir: filepath.Dir(l.probes.storeDir)}); err != nil {
		// Leave no half-started JetStream for the next probe.
		_ = l.ns.ShutdownJetStream()
		return fmt.Errorf("restart jetstream: %w", err)
	}
	return nil
}

// writeProbe writes probeSize bytes to path, syncs and removes it: the store has space for a
// message again when it succeeds. The bytes are random so that a compressing file system cannot
// store them in less.
func writeProbe(path string) error {
	b := make([]byte, probeSize)
	rand.Read(b)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := os.Remove(path); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	return nil
}
