// Package eventlog is hookstream's durable event log on NATS JetStream: by default a nats-server
// embedded in the process with file storage in the data directory, or an external NATS server or
// cluster. It creates (or updates) the streams at open and appends to them through a group-commit
// committer per stream (see Committer), so concurrent appends share fsyncs.
package eventlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookstream/hookstream/server/config"
)

// Stream names and subject spaces.
const (
	// EventsStream holds every accepted event, on subjects EventsSubjectPrefix.<provider>.<type>,
	// and the dead letters redriven to their group, on RedriveSubjectPrefix.<group>.
	EventsStream = "HOOKSTREAM_EVENTS"
	// EventsSubjectPrefix starts every event subject.
	EventsSubjectPrefix = "hookstream.events"
	// QuarantineStream holds rejected payloads and dead letters, on subjects
	// QuarantineSubjectPrefix.<provider>.<reason>.
	QuarantineStream = "HOOKSTREAM_QUARANTINE"
	// QuarantineSubjectPrefix starts every quarantine subject.
	QuarantineSubjectPrefix = "hookstream.quarantine"
)

// Durability says when an append is acknowledged.
type Durability string

const (
	// DurabilityAlways acknowledges an append once it is fsynced to disk (the default): nothing
	// acknowledged is lost on a crash of the process or of the machine. Group commit keeps the
	// cost of the fsyncs shared between concurrent appends.
	DurabilityAlways Durability = "always"
	// DurabilityOS acknowledges an append once it is written to the operating system: nothing
	// acknowledged is lost when the process crashes or is killed, but a power loss or kernel crash
	// can lose the last appends (JetStream syncs to disk every two minutes).
	DurabilityOS Durability = "os"
)

// ErrUnavailable is wrapped by errors of appends the log could not take (store down, timeout,
// cluster without quorum). The caller should answer "retry later".
var ErrUnavailable = errors.New("event log unavailable")

// Options configures Open. Every field without a stated zero meaning must be set (package config
// holds the defaults); Open returns an error wrapping ErrInvalidOptions otherwise.
type Options struct {
	// DataDir is where the embedded server stores its files (DataDir/jetstream). Unused with URL.
	DataDir string
	// URL of an external NATS server or cluster (comma-separated URLs). Empty: embedded server.
	URL string
	// ClientAddr, when set, makes the embedded server listen for NATS clients on host:port (for
	// the nats CLI or a second process). Empty: no listener, only the in-process connection.
	ClientAddr string
	// ClientToken is the token every NATS client of the embedded server must present; required
	// with ClientAddr, since a client could otherwise publish forged events.
	ClientToken string
	// Durability of the embedded server: DurabilityAlways or DurabilityOS. With URL it is the
	// cluster's own setting (sync_always on its servers, replicas): hookstream cannot change it.
	Durability Durability
	// Replicas of the streams, 1 for the embedded server, 3 for a production cluster.
	Replicas int
	// MaxAge drops events older than this. 0: kept until MaxBytes says otherwise.
	MaxAge time.Duration
	// MaxBytes caps the events stream's size; the oldest events go first. 0 or less: no cap.
	MaxBytes int64
	// DuplicateWindow is how long a dedup key is remembered.
	DuplicateWindow time.Duration
	// QuarantineMaxAge drops quarantine entries older than this.
	QuarantineMaxAge time.Duration
	// CommitWorkers is how many commits of the events stream may run at once. Measured with 64
	// producers on the embedded server, the log is CPU-bound either way (22.8–25.3k appends/s
	// with 2, 22.5–28.7k with 1); with atomic batches to a server fsyncing each message, the way
	// to an external server, 2 gave 6.1–7.1k and 1 gave 4.2–4.9k.
	CommitWorkers int
	// BodyLimit is the largest webhook body hookstream accepts, at most MaxBodyLimit. The log's
	// size budget is derived from it (see EventBudget): the embedded server's max_payload and the
	// streams' largest message are set from it, and an external server whose max_payload is too
	// small for it is refused at Open.
	BodyLimit int64
	// MaxGroups is how many consumer groups may exist; OpenGroup refuses a new one beyond it
	// (ErrTooManyGroups). With the Tails and Subscribes the caller allows, it must stay below the
	// consumers nats-server keeps per stream (1,000 by default).
	MaxGroups int
	// StartTimeout bounds Open's retries of an external server that cannot be reached or does
	// not answer (a cluster still electing its leaders): Open retries with backoff, logging each
	// failed attempt, until the streams are created or StartTimeout has passed. Unused without
	// URL.
	StartTimeout time.Duration
	// GroupIdleExpiry is how long a group may go unread (no subscriber fetching) before the
	// server deletes it with its position. 0: groups are kept until deleted.
	GroupIdleExpiry time.Duration
	// Logger receives the embedded server's warnings and errors. Nil: discard.
	Logger *slog.Logger
	// Metrics is where Open registers the log's metrics: group commits, append errors, and what
	// the streams and consumer groups hold (read from JetStream at each scrape). Nil: not
	// exported.
	Metrics prometheus.Registerer

	// serverSync makes the embedded server fsync every message and the committers use atomic
	// batches: the group commit of the first design, kept for the benchmarks (export_test.go).
	serverSync bool
}

// ErrInvalidOptions is wrapped by Open's errors for Options that cannot be used, and for an
// external server that cannot store the largest event of the body limit.
var ErrInvalidOptions = errors.New("invalid event log options")

func (o Options) check() error {
	switch {
	case o.Durability != DurabilityAlways && o.Durability != DurabilityOS:
		return fmt.Errorf("%w: durability %q: want %q or %q", ErrInvalidOptions, o.Durability, DurabilityAlways, DurabilityOS)
	case o.Replicas < 1:
		return fmt.Errorf("%w: replicas %d: want at least 1", ErrInvalidOptions, o.Replicas)
	case o.DuplicateWindow <= 0:
		return fmt.Errorf("%w: duplicate window must be positive", ErrInvalidOptions)
	case o.QuarantineMaxAge <= 0:
		return fmt.Errorf("%w: quarantine max age must be positive", ErrInvalidOptions)
	case o.CommitWorkers < 1:
		return fmt.Errorf("%w: commit workers %d: want at least 1", ErrInvalidOptions, o.CommitWorkers)
	case o.BodyLimit < 1 || o.BodyLimit > MaxBodyLimit:
		return fmt.Errorf("%w: body limit %d: want 1 to %d bytes", ErrInvalidOptions, o.BodyLimit, MaxBodyLimit)
	case o.MaxGroups < 1:
		return fmt.Errorf("%w: max groups %d: want at least 1", ErrInvalidOptions, o.MaxGroups)
	case o.URL != "" && o.StartTimeout <= 0:
		return fmt.Errorf("%w: start timeout must be positive", ErrInvalidOptions)
	case o.GroupIdleExpiry < 0:
		return fmt.Errorf("%w: group idle expiry must not be negative", ErrInvalidOptions)
	case o.URL == "" && o.DataDir == "":
		return fmt.Errorf("%w: data dir is empty", ErrInvalidOptions)
	case o.ClientAddr != "" && o.ClientToken == "":
		return fmt.Errorf("%w: a NATS listener needs a client token", ErrInvalidOptions)
	}
	return nil
}

// Log is an open event log. It watches its own health, refusing appends at once while the store
// is known to be failing and taking them again once a probe finds it can (see Healthy). It is safe
// for concurrent use. Close it when done.
type Log struct {
	ns              *server.Server // nil with an external server
	nc              *nats.Conn
	js              jetstream.JetStream
	bodyLimit       int64
	maxGroups       int
	groupIdleExpiry time.Duration
	groupsMu        sync.Mutex // serialises counting the groups and creating one
	events          *Committer
	quarantine      *Committer
	syncers         []*blockSyncer     // events then quarantine, with the embedded server and "always"
	stopSync        context.CancelFunc // stops syncConsumers
	syncDone        chan struct{}      // closed when syncConsumers has returned

	health *health
	probes probeState // only the health loop's probes use it
}

// Open connects to (or starts) the NATS server, creates or updates the streams, and starts their
// committers. An external server is retried until o.StartTimeout (see Options). Errors wrap
// ErrInvalidOptions, or ErrUnavailable when the server cannot be reached or does not answer.
func Open(ctx context.Context, o Options) (*Log, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Log{bodyLimit: o.BodyLimit, maxGroups: o.MaxGroups, groupIdleExpiry: o.GroupIdleExpiry}
	if err := l.setUp(ctx, o); err != nil {
		l.Close()
		return nil, err
	}
	m := newLogMetrics()
	if o.Metrics != nil {
		for _, c := range append(m.collectors(), newCollector(l)) {
			if err := o.Metrics.Register(c); err != nil {
				l.Close()
				return nil, fmt.Errorf("%w: metrics: %w", ErrInvalidOptions, err)
			}
		}
	}
	l.health = newHealth(o.Logger)
	l.events = newCommitter(l.js, o.CommitWorkers, l.health, m.committer("events"))
	l.quarantine = newCommitter(l.js, 1, l.health, m.committer("quarantine"))
	l.watchHealth()
	if o.URL != "" || o.serverSync {
		return l, nil
	}
	// On the embedded server an atomic batch costs more than it saves: the server stages each
	// batch in a file store of its own, created and deleted per batch (measured: a batch of 64
	// took 7.8 ms, 64 pipelined publishes 1 ms). Commits are pipelined plain publishes; with
	// durability "always" each commit ends with one fsync of the stream's files.
	l.events.SetMinBatch(0)
	l.quarantine.SetMinBatch(0)
	if o.Durability == DurabilityAlways {
		if err := l.startSync(o.Logger); err != nil {
			l.Close()
			return nil, err
		}
	}
	return l, nil
}

// Start-up retries of an external server: the first waits startRetryMin, each next one twice as
// long, at most startRetryMax; one attempt at creating the streams waits at most startAttempt.
const (
	startRetryMin = 250 * time.Millisecond
	startRetryMax = 5 * time.Second
	startAttempt  = 5 * time.Second
)

// setUp connects and creates the streams. An external server that cannot be reached or does not
// answer is retried with backoff until o.StartTimeout: a cluster starting at the same time as
// hookstream has no JetStream leader for its first seconds. Only ErrUnavailable is retried.
func (l *Log) setUp(ctx context.Context, o Options) error {
	if o.URL == "" {
		if err := l.connect(o); err != nil {
			return err
		}
		return l.createStreams(ctx, o)
	}
	ctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	wait := startRetryMin
	for attempt := 1; ; attempt++ {
		err := l.tryStart(ctx, o)
		if err == nil || !errors.Is(err, ErrUnavailable) {
			return err
		}
		if ctx.Err() != nil || time.Until(deadlineOf(ctx)) < wait {
			return fmt.Errorf("%w (gave up after %d attempts in eventlog.start_timeout %v)", err, attempt, o.StartTimeout)
		}
		o.Logger.Warn("eventlog: the NATS server is not ready, retrying", "attempt", attempt, "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, startRetryMax)
	}
}

// tryStart is one attempt of setUp on an external server: connect unless connected, then create
// the streams, waiting at most startAttempt for them.
func (l *Log) tryStart(ctx context.Context, o Options) error {
	if l.nc == nil {
		if err := l.connect(o); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, startAttempt)
	defer cancel()
	return l.createStreams(ctx, o)
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// connect starts the embedded server or connects to the external one, and checks that the
// server's max_payload fits the largest quarantine entry.
func (l *Log) connect(o Options) error {
	var err error
	if o.URL == "" {
		if l.ns, err = startEmbedded(o); err != nil {
			return err
		}
		l.nc, err = nats.Connect("", nats.InProcessServer(l.ns), nats.Name("hookstream"), nats.MaxReconnects(-1), nats.Token(o.ClientToken))
	} else {
		l.nc, err = nats.Connect(o.URL, nats.Name("hookstream"), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(false))
	}
	if err != nil {
		return fmt.Errorf("%w: connect: %w", ErrUnavailable, err)
	}
	if need := entryBudget(o.BodyLimit); l.nc.MaxPayload() < need {
		return fmt.Errorf("%w: the NATS server's max_payload is %d bytes; a body limit of %d bytes needs at least %d (set max_payload on the NATS servers, or lower http.body_limit to %d)",
			ErrInvalidOptions, l.nc.MaxPayload(), o.BodyLimit, need, (l.nc.MaxPayload()-2*envelopeAllowance)/(1+typedExpansion))
	}
	// nats.go keeps an async publish pending until its ack comes, and a server that failed to
	// store a message never sends one (stream.go, processJetStreamMsg): without a timeout they
	// pile up until 4,000 are pending, and from then on every publish stalls and fails
	// (ErrTooManyStalledMsgs), even once the server is well again.
	if l.js, err = jetstream.New(l.nc, jetstream.WithPublishAsyncTimeout(commitTimeout)); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	return nil
}

// createStreams creates or updates the events and quarantine streams.
func (l *Log) createStreams(ctx context.Context, o Options) error {
	events := jetstream.StreamConfig{
		Name:               EventsStream,
		Description:        "hookstream: accepted webhook events",
		Subjects:           []string{EventsSubjectPrefix + ".>", RedriveSubjectPrefix + ".>"},
		Storage:            jetstream.FileStorage,
		Retention:          jetstream.LimitsPolicy,
		Discard:            jetstream.DiscardOld,
		MaxAge:             o.MaxAge,
		MaxBytes:           orUnlimited(o.MaxBytes),
		MaxMsgs:            -1,
		MaxMsgSize:         int32(entryBudget(o.BodyLimit)),
		Duplicates:         o.DuplicateWindow,
		Replicas:           o.Replicas,
		AllowDirect:        true,
		AllowAtomicPublish: true,
	}
	quarantine := events
	quarantine.Name = QuarantineStream
	quarantine.Description = "hookstream: rejected authentic payloads and dead letters"
	quarantine.Subjects = []string{QuarantineSubjectPrefix + ".>"}
	quarantine.MaxAge = o.QuarantineMaxAge
	quarantine.MaxBytes = -1
	for _, cfg := range []jetstream.StreamConfig{events, quarantine} {
		if _, err := l.js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("%w: create stream %s: %w", ErrUnavailable, cfg.Name, err)
		}
	}
	return nil
}

// startSync makes the committers fsync the streams' files after each commit and starts the
// loop that fsyncs consumer state (durability "always" on the embedded server).
func (l *Log) startSync(logger *slog.Logger) error {
	storeDir := l.ns.StoreDir()
	if _, err := syncTree(storeDir); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	account := l.ns.GlobalAccount().Name
	l.syncers = []*blockSyncer{newBlockSyncer(storeDir, account, EventsStream), newBlockSyncer(storeDir, account, QuarantineStream)}
	l.events.sync = l.syncers[0].Sync
	l.quarantine.sync = l.syncers[1].Sync
	var syncCtx context.Context
	syncCtx, l.stopSync = context.WithCancel(context.Background())
	l.syncDone = make(chan struct{})
	dirs := []string{streamDir(storeDir, account, EventsStream), streamDir(storeDir, account, QuarantineStream)}
	go func() {
		defer close(l.syncDone)
		syncConsumers(syncCtx, dirs, consumerSyncInterval, logger)
	}()
	return nil
}

func orUnlimited(n int64) int64 {
	if n <= 0 {
		return -1
	}
	return n
}

func startEmbedded(o Options) (*server.Server, error) {
	so := &server.Options{
		ServerName: "hookstream",
		JetStream:  true,
		StoreDir:   filepath.Join(o.DataDir, "jetstream"),
		// Durability "always" is the committers' fsync per commit (see blockSyncer), not the
		// server's fsync per message; consumer state is fsynced every second (syncConsumers):
		// losing it to a power cut means redeliveries, not loss.
		SyncAlways: o.serverSync,
		NoSigs:     true,
		DontListen: o.ClientAddr == "",
		// Room for the largest quarantine entry the body limit allows (see EventBudget).
		MaxPayload: int32(entryBudget(o.BodyLimit)),
		// Empty without a listener: the in-process connection needs none.
		Authorization: o.ClientToken,
	}
	if o.ClientAddr != "" {
		host, port, err := net.SplitHostPort(o.ClientAddr)
		if err != nil {
			return nil, fmt.Errorf("nats client address %q: %w", o.ClientAddr, err)
		}
		so.Host = host
		if so.Port, err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("nats client address %q: %w", o.ClientAddr, err)
		}
		if so.Port == 0 {
			so.Port = server.RANDOM_PORT
		}
	}
	ns, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("embedded nats-server: %w", err)
	}
	ns.SetLoggerV2(&natsLogger{log: o.Logger}, false, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("%w: embedded nats-server did not start", ErrUnavailable)
	}
	return ns, nil
}

// ClientURL is the URL NATS clients reach the embedded server at, or "" without a listener.
func (l *Log) ClientURL() string {
	if l.ns == nil || l.ns.Addr() == nil {
		return ""
	}
	return l.ns.ClientURL()
}

// Close stops the committers (appends waiting are answered), closes the connection and shuts the
// embedded server down, waiting until its files are closed.
func (l *Log) Close() error {
	if l.health != nil {
		l.health.close() // no probe may restart JetStream while the server shuts down
	}
	if l.events != nil {
		l.events.Close()
	}
	if l.stopSync != nil {
		l.stopSync()
		<-l.syncDone
	}
	if l.quarantine != nil {
		l.quarantine.Close()
	}
	if l.nc != nil {
		l.nc.FlushTimeout(2 * time.Second) // acks and naks sent just before Close reach the server
		l.nc.Close()
	}
	if l.ns != nil {
		l.ns.Shutdown()
		l.ns.WaitForShutdown()
	}
	return nil
}

// natsLogger sends the embedded server's log to slog; notices and debug output are dropped.
type natsLogger struct{ log *slog.Logger }

func (n *natsLogger) Noticef(string, ...any) {}
func (n *natsLogger) Debugf(string, ...any)  {}
func (n *natsLogger) Tracef(string, ...any)  {}
func (n *natsLogger) Warnf(format string, v ...any) {
	n.log.Warn("nats-server: " + fmt.Sprintf(format, v...))
}
func (n *natsLogger) Errorf(format string, v ...any) {
	n.log.Error("nats-server: " + fmt.Sprintf(format, v...))
}
func (n *natsLogger) Fatalf(format string, v ...any) {
	n.log.Error("nats-server fatal: " + fmt.Sprintf(format, v...))
}

// OptionsFrom returns the Options of a configuration: the one place its keys meet the log's
// options (package config holds the defaults). Logger is left unset.
func OptionsFrom(c config.Config) Options {
	return Options{
		DataDir:          c.DataDir,
		URL:              c.EventLog.NATSURL,
		ClientAddr:       c.EventLog.NATSListen,
		ClientToken:      c.EventLog.NATSListenToken,
		Durability:       Durability(c.EventLog.Durability),
		Replicas:         c.EventLog.Replicas,
		MaxAge:           c.EventLog.MaxAge,
		MaxBytes:         c.EventLog.MaxBytes,
		DuplicateWindow:  c.EventLog.DuplicateWindow,
		QuarantineMaxAge: c.EventLog.QuarantineMaxAge,
		CommitWorkers:    c.EventLog.CommitWorkers,
		BodyLimit:        c.HTTP.BodyLimit,
		MaxGroups:        c.Limits.MaxGroups,
		GroupIdleExpiry:  c.Limits.GroupIdleExpiry,
		StartTimeout:     c.EventLog.StartTimeout,
	}
}
