package eventlog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

const (
	// MaxBatch is the most messages one commit carries: JetStream's limit for an atomic batch.
	MaxBatch = 1000
	// DefaultMinBatch is the smallest commit sent as an atomic batch; smaller ones go out as
	// plain publishes. An atomic batch costs a fixed number of round trips whatever its size,
	// while plain publishes cost one fsync each: measured on the 2-core reference machine
	// (BenchmarkCommitterBatchSize), batches of 8 were slower than plain publishes and batches of
	// 16 faster.
	DefaultMinBatch = 16
	// commitTimeout bounds one commit. Appends still waiting then fail with ErrUnavailable.
	commitTimeout = 10 * time.Second
	// errCodeBatchDuplicate is JetStream's error for an atomic batch that holds a Nats-Msg-Id
	// already stored (JSAtomicPublishContainsDuplicateMessageErr).
	errCodeBatchDuplicate = 10201
	// errCodeInProcess is JetStream's error for a message whose Nats-Msg-Id belongs to a
	// message still being proposed on a cluster (JSStreamDuplicateMessageConflict): typically
	// the first try of a retried webhook, still in flight after a leader change. Its outcome is
	// known once the proposal settles, so the message is published again shortly.
	errCodeInProcess = 10158
)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("event log closed")

// Result is the outcome of appending one message.
type Result struct {
	// Sequence is the message's stream sequence; for a duplicate, the original's.
	Sequence uint64
	// Duplicate is true when a message with the same Nats-Msg-Id was stored inside the
	// duplicate window, so nothing new was stored.
	Duplicate bool
	// Err is nil when the message is stored (or a duplicate); else it wraps ErrUnavailable or
	// ErrClosed.
	Err error
}

// Committer appends messages to one stream with group commit: every append that arrives while
// the previous commit is running goes out in the next commit (at most MaxBatch messages). No
// append waits for others to arrive: a lone append is committed at once. On the embedded server
// with durability "always", a commit is pipelined plain publishes followed by one fsync of the
// stream's files (see blockSyncer); on an external server it is one JetStream atomic batch
// (fsynced once by a server with sync_always) or, below MinBatch messages, pipelined plain
// publishes. It is safe for concurrent use.
type Committer struct {
	js       jetstream.JetStream
	health   *health // shared by the log's committers
	minBatch int
	plain    bool // every commit as plain publishes (the baseline of the benchmarks)
	// sync, when set, makes a commit's messages durable after they are acknowledged: the
	// embedded server's group commit (see blockSyncer). Set before the first append.
	sync func() error
	m    *committerMetrics

	commits   atomic.Int64 // commits made
	batched   atomic.Int64 // messages committed in atomic batches
	published atomic.Int64 // messages committed as plain publishes

	reqs      chan *request
	closeOnce sync.Once
	closing   chan struct{}
	workers   sync.WaitGroup
}

type request struct {
	msgs    []*nats.Msg
	results []Result
	done    chan struct{}
}

func newCommitter(js jetstream.JetStream, workers int, h *health, m *committerMetrics) *Committer {
	c := &Committer{
		js:       js,
		health:   h,
		m:        m,
		minBatch: DefaultMinBatch,
		reqs:     make(chan *request, 4*MaxBatch),
		closing:  make(chan struct{}),
	}
	for range workers {
		c.workers.Add(1)
		go c.run()
	}
	return c
}

// SetMinBatch sets the smallest commit sent as an atomic batch (default DefaultMinBatch); 0
// means never batch: every message is a plain publish. For benchmarks; call before appending.
func (c *Committer) SetMinBatch(n int) {
	c.plain = n <= 0
	c.minBatch = n
}

// Append stores msgs (each with its subject, headers and, for dedup, a Nats-Msg-Id header) and
// returns one Result per message, in order, once every one is stored or has failed. When ctx ends
// first, Append returns ctx's error: the messages may still be stored (a retry is recognised as a
// duplicate). While the log is failing (see Log.Healthy), Append returns that error, which wraps
// ErrUnavailable, at once: nothing is stored. Messages must not be used by the caller after
// Append.
func (c *Committer) Append(ctx context.Context, msgs ...*nats.Msg) ([]Result, error) {
	select {
	case <-c.closing:
		c.m.failed(reasonClosed, len(msgs))
		return nil, ErrClosed
	default:
	}
	if err := c.health.current().err; err != nil {
		c.m.failed(reasonRefused, len(msgs))
		return nil, err
	}
	r := &request{msgs: msgs, results: make([]Result, len(msgs)), done: make(chan struct{})}
	select {
	case c.reqs <- r:
	case <-c.closing:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-r.done:
		return r.results, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Stats are a committer's counters since it started.
type Stats struct {
	// Commits is the number of commits made.
	Commits int64
	// Batched is the number of messages sent in atomic batches.
	Batched int64
	// Published is the number of messages sent as plain publishes (including resends of a batch
	// rejected for a duplicate).
	Published int64
}

// Stats returns the committer's counters.
func (c *Committer) Stats() Stats {
	return Stats{Commits: c.commits.Load(), Batched: c.batched.Load(), Published: c.published.Load()}
}

// Close stops the committer once the appends already queued are committed.
func (c *Committer) Close() {
	c.closeOnce.Do(func() { close(c.closing) })
	c.workers.Wait()
}

func (c *Committer) run() {
	defer c.workers.Done()
	var carry *request // a request that did not fit in the previous commit
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-c.reqs:
			case <-c.closing:
				// Answer what is still queued, then stop.
				for {
					select {
					case r := <-c.reqs:
						c.commit([]*request{r})
					default:
						return
					}
				}
			}
		}
		batch := []*request{first}
		n := len(first.msgs)
	gather:
		for n < MaxBatch {
			select {
			case r := <-c.reqs:
				if n+len(r.msgs) > MaxBatch {
					carry = r
					break gather
				}
				batch = append(batch, r)
				n += len(r.msgs)
			default:
				break gather
			}
		}
		c.commit(batch)
	}
}

// commit stores the messages of batch and answers each request.
func (c *Committer) commit(batch []*request) {
	defer func() {
		for _, r := range batch {
			close(r.done)
		}
	}()
	var msgs []*nats.Msg
	var results []*Result
	for _, r := range batch {
		for i, m := range r.msgs {
			if m.Header == nil {
				m.Header = nats.Header{}
			}
			msgs = append(msgs, m)
			results = append(results, &r.results[i])
		}
	}
	st := c.health.current()
	if st.err != nil {
		// Queued before the log failed: refused like the appends after.
		for _, r := range results {
			r.Err = st.err
		}
		c.m.failed(reasonRefused, len(results))
		return
	}
	// Runs before the answers go out: a producer retrying at once already finds the log failing.
	defer c.health.observe(st, results)
	ctx, cancel := context.WithTimeout(st.ctx, commitTimeout)
	defer cancel()
	c.commits.Add(1)
	began := time.Now()
	c.m.size.Observe(float64(len(msgs)))
	defer func() { c.m.commit.Observe(time.Since(began).Seconds()) }()

	if c.sync != nil || c.plain || len(msgs) < c.minBatch || len(msgs) > MaxBatch || repeatsID(msgs) {
		c.publishEach(ctx, msgs, results)
		if c.sync == nil {
			return
		}
		// The acks only say the messages reached the server's files: answer stored only once
		// they are on disk.
		synced := time.Now()
		err := c.sync()
		c.m.fsync.Observe(time.Since(synced).Seconds())
		if err != nil {
			n := 0
			for _, r := range results {
				if r.Err == nil {
					*r = Result{Err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
					n++
				}
			}
			c.m.failed(reasonFsync, n)
		}
		return
	}
	c.batched.Add(int64(len(msgs)))
	ack, err := jetstreamext.PublishMsgBatch(ctx, c.js, msgs, jetstreamext.BatchFlowControl{AckFirst: false})
	for _, m := range msgs { // undo what PublishMsgBatch set, for a resend one by one
		m.Reply = ""
		m.Header.Del(jetstreamext.BatchIDHeader)
		m.Header.Del(jetstreamext.BatchSeqHeader)
		m.Header.Del(jetstreamext.BatchCommitHeader)
	}
	var apiErr *jetstream.APIError
	switch {
	case err == nil:
		first := ack.Sequence - uint64(len(msgs)) + 1
		for i, r := range results {
			*r = Result{Sequence: first + uint64(i)}
		}
	case errors.As(err, &apiErr) && (apiErr.ErrorCode == errCodeBatchDuplicate || apiErr.ErrorCode == errCodeInProcess):
		// One message is a duplicate, or one still in process: the batch was rejected whole.
		// Store the others one by one and answer the duplicates as duplicates.
		c.publishEach(ctx, msgs, results)
	default:
		for _, r := range results {
			r.Err = fmt.Errorf("%w: atomic batch: %w", ErrUnavailable, err)
		}
		c.m.failed(reasonUnavailable, len(results))
	}
}

// publishEach publishes msgs as pipelined plain publishes and waits for every ack. A message
// whose id is still in process on the cluster is published again, after a short wait doubling up
// to inProcessWaitMax, until it is answered or ctx ends: the provider gets a definite answer
// instead of a 503 for a delivery that is being stored.
func (c *Committer) publishEach(ctx context.Context, msgs []*nats.Msg, results []*Result) {
	c.published.Add(int64(len(msgs)))
	defer func(all []*Result) { // what is still failed once the retries are over
		n := 0
		for _, r := range all {
			if r.Err != nil {
				n++
			}
		}
		c.m.failed(reasonUnavailable, n)
	}(results)
	msgs, results = c.publishOnce(ctx, msgs, results)
	for wait := inProcessWait; len(msgs) > 0; wait = min(2*wait, inProcessWaitMax) {
		select {
		case <-ctx.Done():
			return // their results hold the in-process error
		case <-time.After(wait):
		}
		msgs, results = c.publishOnce(ctx, msgs, results)
	}
}

// Waits before a message in process is published again.
const (
	inProcessWait    = 50 * time.Millisecond
	inProcessWaitMax = time.Second
)

// publishOnce publishes msgs as pipelined plain publishes, waits for every ack, and returns the
// messages answered "in process", with their results.
func (c *Committer) publishOnce(ctx context.Context, msgs []*nats.Msg, results []*Result) ([]*nats.Msg, []*Result) {
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		m.Reply = "" // set by an earlier try: an async publish takes none
		f, err := c.js.PublishMsgAsync(m)
		if err != nil {
			results[i].Err = fmt.Errorf("%w: publish: %w", ErrUnavailable, err)
			continue
		}
		futures[i] = f
	}
	var again []*nats.Msg
	var againResults []*Result
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			*results[i] = Result{Sequence: ack.Sequence, Duplicate: ack.Duplicate}
		case err := <-f.Err():
			results[i].Err = fmt.Errorf("%w: publish: %w", ErrUnavailable, err)
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeInProcess {
				again, againResults = append(again, msgs[i]), append(againResults, results[i])
			}
		case <-ctx.Done():
			// The commit timed out, or the log failed meanwhile.
			results[i].Err = fmt.Errorf("%w: publish: %w", ErrUnavailable, context.Cause(ctx))
		}
	}
	return again, againResults
}

// repeatsID reports whether two of msgs carry the same Nats-Msg-Id: such a commit goes out as
// plain publishes, so that the second is answered as a duplicate of the first.
func repeatsID(msgs []*nats.Msg) bool {
	seen := make(map[string]struct{}, len(msgs))
	for _, m := range msgs {
		id := m.Header.Get(jetstream.MsgIDHeader)
		if id == "" {
			continue
		}
		if _, ok := seen[id]; ok {
			return true
		}
		seen[id] = struct{}{}
	}
	return false
}
