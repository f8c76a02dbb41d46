package eventlog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
)

// Errors of consumer groups.
var (
	// ErrGroupMismatch is returned by OpenGroup for a group that exists with another filter.
	ErrGroupMismatch = errors.New("consumer group exists with another filter")
	// ErrRejected is wrapped by errors for a consumer the server refused (a bad start time, say);
	// the caller's request is at fault.
	ErrRejected = errors.New("consumer rejected")
)

// Start says where a new consumer begins.
type Start struct {
	// Policy is one of the start policies; POLICY_UNSPECIFIED is not valid here.
	Policy hookstreamv1.StartPosition_Policy
	// Sequence is the first sequence with POLICY_SEQUENCE.
	Sequence uint64
	// Time is the earliest reception time with POLICY_TIME.
	Time time.Time
}

// ConsumerConfig configures a consumer group or an ephemeral consumer of the events stream.
type ConsumerConfig struct {
	// Subjects select the events (FilterSubjects).
	Subjects []string
	// Start is where a new consumer begins; an existing group resumes where it stopped.
	Start Start
	// AckWait is how long a delivered event may stay unacknowledged before it is redelivered.
	AckWait time.Duration
	// MaxDeliveries is how many deliveries the group's user allows; the log records it with the
	// group, it does not enforce it (the caller moves events to the dead letters itself).
	MaxDeliveries int
}

// Consumer delivers events of the events stream to one consumer group (durable, shared by all
// its subscribers) or to one ephemeral subscriber, with acknowledgements. It is safe for
// concurrent use.
type Consumer struct {
	log       *Log
	c         jetstream.Consumer
	name      string
	ephemeral bool
	// Config is the group's configuration in force: an existing group's settings win over the
	// ones asked for.
	Config ConsumerConfig
}

func (s Start) deliver() (jetstream.DeliverPolicy, uint64, *time.Time, error) {
	switch s.Policy {
	case hookstreamv1.StartPosition_POLICY_NEW:
		return jetstream.DeliverNewPolicy, 0, nil, nil
	case hookstreamv1.StartPosition_POLICY_ALL:
		return jetstream.DeliverAllPolicy, 0, nil, nil
	case hookstreamv1.StartPosition_POLICY_SEQUENCE:
		if s.Sequence == 0 {
			return 0, 0, nil, fmt.Errorf("%w: start sequence must be at least 1", ErrBadFilter)
		}
		return jetstream.DeliverByStartSequencePolicy, s.Sequence, nil, nil
	case hookstreamv1.StartPosition_POLICY_TIME:
		if s.Time.IsZero() {
			return 0, 0, nil, fmt.Errorf("%w: start time missing", ErrBadFilter)
		}
		t := s.Time
		return jetstream.DeliverByStartTimePolicy, 0, &t, nil
	}
	return 0, 0, nil, fmt.Errorf("%w: start policy %d", ErrBadFilter, s.Policy)
}

func (cc ConsumerConfig) jetstream() (jetstream.ConsumerConfig, error) {
	policy, seq, t, err := cc.Start.deliver()
	if err != nil {
		return jetstream.ConsumerConfig{}, err
	}
	return jetstream.ConsumerConfig{
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        cc.AckWait,
		MaxDeliver:     -1, // dead letters are moved to the quarantine by the caller
		MaxAckPending:  -1,
		FilterSubjects: eventSubjects(cc.Subjects),
		DeliverPolicy:  policy,
		OptStartSeq:    seq,
		OptStartTime:   t,
		Metadata:       map[string]string{"max_deliveries": strconv.Itoa(cc.MaxDeliveries)},
	}, nil
}

// OpenGroup opens the consumer group name, creating it with cc when it does not exist (unless
// Options.MaxGroups groups exist: ErrTooManyGroups); a new group expires after
// Options.GroupIdleExpiry unread. An existing group keeps its own ack wait and maximum deliveries
// (see Consumer.Config); its filter must be cc's (ErrGroupMismatch otherwise). Errors also wrap
// ErrBadFilter, ErrRejected or ErrUnavailable.
func (l *Log) OpenGroup(ctx context.Context, name string, cc ConsumerConfig) (*Consumer, error) {
	cfg, err := cc.jetstream()
	if err != nil {
		return nil, err
	}
	cfg.Durable = groupPrefix + name
	cfg.InactiveThreshold = l.groupIdleExpiry
	stream, err := l.js.Stream(ctx, EventsStream)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	existing, err := stream.Consumer(ctx, cfg.Durable)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		c, err := l.createGroup(ctx, stream, cfg)
		if err == nil {
			return &Consumer{log: l, c: c, name: cfg.Durable, Config: cc}, nil
		}
		// Another subscriber of the group may have created it meanwhile.
		if existing, err2 := stream.Consumer(ctx, cfg.Durable); err2 == nil {
			return l.join(ctx, stream, existing, cc)
		}
		if errors.Is(err, ErrTooManyGroups) || errors.Is(err, ErrUnavailable) {
			return nil, err
		}
		return nil, consumerError(err)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return l.join(ctx, stream, existing, cc)
}

// join attaches to an existing group, whose settings win, but for the idle expiry and the
// redrive subject: a group takes the idle expiry configured now (it may have been created under
// another), and its redrive subject when it was created without one (by an older hookstream).
func (l *Log) join(ctx context.Context, stream jetstream.Stream, c jetstream.Consumer, cc ConsumerConfig) (*Consumer, error) {
	info := c.CachedInfo()
	have, want := eventSubjects(filterOf(info.Config)), slices.Clone(eventSubjects(cc.Subjects))
	slices.Sort(have)
	slices.Sort(want)
	if !slices.Equal(have, want) {
		return nil, ErrGroupMismatch
	}
	cfg, update := withRedrive(info.Config)
	if cfg.InactiveThreshold != l.groupIdleExpiry {
		cfg.InactiveThreshold, update = l.groupIdleExpiry, true
	}
	if update {
		updated, err := stream.UpdateConsumer(ctx, cfg)
		if err != nil {
			return nil, consumerError(err)
		}
		c, info = updated, updated.CachedInfo()
	}
	cc.AckWait = info.Config.AckWait
	if n, err := strconv.Atoi(info.Config.Metadata["max_deliveries"]); err == nil {
		cc.MaxDeliveries = n
	}
	return &Consumer{log: l, c: c, name: info.Name, Config: cc}, nil
}

// ephemeralInactivity is how long the server keeps an ephemeral consumer whose subscriber is
// gone without deleting it (a crash): Close deletes it otherwise.
const ephemeralInactivity = time.Minute

// OpenEphemeral opens a consumer of its own for one subscriber; Close deletes it. Errors as
// OpenGroup.
func (l *Log) OpenEphemeral(ctx context.Context, cc ConsumerConfig) (*Consumer, error) {
	cfg, err := cc.jetstream()
	if err != nil {
		return nil, err
	}
	cfg.Name = "ephemeral-" + uuid.NewString()
	cfg.InactiveThreshold = ephemeralInactivity
	c, err := l.js.CreateConsumer(ctx, EventsStream, cfg)
	if err != nil {
		return nil, consumerError(err)
	}
	return &Consumer{log: l, c: c, name: cfg.Name, ephemeral: true, Config: cc}, nil
}

// Name is the consumer's name in the log.
func (c *Consumer) Name() string { return c.name }

// Close deletes an ephemeral consumer at once, so that the streams ended do not hold consumers
// of the log; a group stays. An error (wrapping ErrUnavailable) means the consumer is left to the
// server, which deletes it after ephemeralInactivity.
func (c *Consumer) Close() error {
	if !c.ephemeral {
		return nil
	}
	return c.log.deleteConsumer(c.name)
}

// closeTimeout bounds the deletion of a consumer whose call has ended.
const closeTimeout = 5 * time.Second

// deleteConsumer deletes the consumer name of the events stream; one already gone is no error.
func (l *Log) deleteConsumer(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	err := l.js.DeleteConsumer(ctx, EventsStream, name)
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("%w: delete consumer %s: %w", ErrUnavailable, name, err)
	}
	return nil
}

// ErrTooManyConsumers is wrapped by the errors of a consumer the server refused because the
// events stream holds as many as it may (nats-server: 1,000 by default).
var ErrTooManyConsumers = errors.New("the event log holds the most consumers it may")

func consumerError(err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeMaximumConsumersLimit {
		return fmt.Errorf("%w: %s", ErrTooManyConsumers, apiErr.Description)
	}
	if errors.As(err, &apiErr) && apiErr.Code == 400 {
		return fmt.Errorf("%w: %s", ErrRejected, apiErr.Description)
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// Delivery is one event delivered to a consumer, to be settled with exactly one of Ack, Nak or
// Term (and InProgress to keep it).
type Delivery struct {
	// Event is the delivered event, its sequence set; nil when the stored bytes do not decode
	// (Err then wraps ErrCorrupt and the delivery should be terminated).
	Event *hookstreamv1.Event
	Err   error
	// Size is the event's encoded size in bytes.
	Size int
	// Sequence is the event's stream sequence.
	Sequence uint64
	// Attempt is how many times the event has been delivered to the consumer, this time
	// included.
	Attempt int
	msg     jetstream.Msg
}

// Ack acknowledges the event: it is not delivered to the consumer again.
func (d *Delivery) Ack() error { return d.msg.Ack() }

// Nak releases the event for redelivery after delay.
func (d *Delivery) Nak(delay time.Duration) error { return d.msg.NakWithDelay(delay) }

// Term stops the event's delivery to the consumer for good.
func (d *Delivery) Term() error { return d.msg.Term() }

// InProgress restarts the event's ack wait.
func (d *Delivery) InProgress() error { return d.msg.InProgress() }

// Batch is the events of one fetch, delivered as they arrive.
type Batch struct {
	c        chan *Delivery
	stop     chan struct{}
	stopOnce sync.Once
	acked    bool          // the consumer acknowledges: Stop releases what it did not deliver
	wait     time.Duration // the fetch's longest wait
	batch    jetstream.MessageBatch
	info     func(context.Context) (*jetstream.ConsumerInfo, error) // nil for a tail
}

// Deliveries returns the batch's events; the channel is closed when the fetch ends.
func (b *Batch) Deliveries() <-chan *Delivery { return b.c }

// Stop abandons the batch, for a caller whose call has ended: the events it has not taken from
// Deliveries, and those still to arrive, are released for redelivery once the fetch's wait is
// over (a tail has nothing to release). Released at once, they would go to the same abandoned
// fetch again, each time a delivery attempt more. Deliveries must not be read after Stop. Stop
// may be called more than once, and after the batch ended.
func (b *Batch) Stop() {
	b.stopOnce.Do(func() {
		close(b.stop)
		go func() {
			for d := range b.c {
				b.release(d)
			}
		}()
	})
}

func (b *Batch) release(d *Delivery) {
	if b.acked {
		d.Nak(b.wait)
	}
}

// Err returns why the fetch ended early, once Deliveries is closed: nil, an error wrapping
// ErrConsumerGone when the consumer no longer exists (deleted, or lost with an in-process restart
// of JetStream: the subscriber must open it again), or one wrapping ErrUnavailable.
func (b *Batch) Err() error {
	err := b.batch.Error()
	switch {
	case err == nil, errors.Is(err, nats.ErrTimeout):
		return nil
	case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound):
		return fmt.Errorf("%w: %w", ErrConsumerGone, err)
	}
	// A pull to a consumer deleted between two fetches finds no one to answer it, which also
	// happens while JetStream is down: ask whether the consumer still exists.
	if b.info != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, ierr := b.info(ctx); errors.Is(ierr, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("%w: %w", ErrConsumerGone, err)
		}
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// ErrConsumerGone is wrapped by the errors of a consumer that no longer exists.
var ErrConsumerGone = errors.New("consumer no longer exists")

// Fetch asks for at most n events, waiting at most wait for the first. Errors wrap
// ErrUnavailable.
func (c *Consumer) Fetch(n int, wait time.Duration) (*Batch, error) {
	batch, err := c.c.Fetch(n, jetstream.FetchMaxWait(wait))
	if err != nil {
		if gone := (&Batch{batch: errBatch{err}, info: c.c.Info}).Err(); errors.Is(gone, ErrConsumerGone) {
			return nil, gone
		}
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	b := newBatch(batch, true, wait)
	b.info = c.c.Info
	return b, nil
}

// newBatch delivers the messages of batch, a fetch waiting at most wait, as they arrive, until it
// ends or is stopped; acked says whether its consumer acknowledges.
func newBatch(batch jetstream.MessageBatch, acked bool, wait time.Duration) *Batch {
	b := &Batch{c: make(chan *Delivery, 64), stop: make(chan struct{}), acked: acked, wait: wait, batch: batch}
	go func() {
		defer close(b.c)
		for m := range batch.Messages() {
			d := newDelivery(m)
			select {
			case b.c <- d:
			case <-b.stop:
				b.release(d)
			}
		}
	}()
	return b
}

func newDelivery(m jetstream.Msg) *Delivery {
	d := &Delivery{msg: m, Size: len(m.Data())}
	meta, err := m.Metadata()
	if err != nil {
		d.Err = fmt.Errorf("%w: metadata: %w", ErrCorrupt, err)
		return d
	}
	d.Sequence, d.Attempt = meta.Sequence.Stream, int(meta.NumDelivered)
	d.Event, d.Err = decodeEvent(d.Sequence, m.Data())
	if seq := redrivenSequence(m); seq != 0 && d.Err == nil {
		d.Event.Sequence = seq // a redriven dead letter is delivered as the event it was
	}
	return d
}

// Tail reads the events stream from a start position, without acknowledgements (an ordered
// consumer of the server's, which nats.go recreates when it falls behind, and on each fetch).
// Close it when done.
type Tail struct {
	log *Log
	c   jetstream.Consumer
}

// OpenTail opens a tail of the events on subjects from start. Errors as OpenGroup.
func (l *Log) OpenTail(ctx context.Context, subjects []string, start Start) (*Tail, error) {
	policy, seq, t, err := start.deliver()
	if err != nil {
		return nil, err
	}
	c, err := l.js.OrderedConsumer(ctx, EventsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects:    eventSubjects(subjects),
		DeliverPolicy:     policy,
		OptStartSeq:       seq,
		OptStartTime:      t,
		InactiveThreshold: ephemeralInactivity,
	})
	if err != nil {
		return nil, consumerError(err)
	}
	return &Tail{log: l, c: c}, nil
}

// Close deletes the tail's consumer at once, so that the tails ended do not hold consumers of
// the log. An error (wrapping ErrUnavailable) means the consumer is left to the server, which
// deletes it after ephemeralInactivity. Fetch must not be called after Close.
func (t *Tail) Close() error {
	info := t.c.CachedInfo()
	if info == nil {
		return nil
	}
	return t.log.deleteConsumer(info.Name)
}

// Fetch returns the next events, at most n, waiting at most wait for the first. Errors wrap
// ErrUnavailable.
func (t *Tail) Fetch(n int, wait time.Duration) (*Batch, error) {
	batch, err := t.c.Fetch(n, jetstream.FetchMaxWait(wait))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return newBatch(batch, false, wait), nil
}

// errBatch is a fetch that failed before it started.
type errBatch struct{ err error }

func (b errBatch) Messages() <-chan jetstream.Msg { return nil }
func (b errBatch) Error() error                   { return b.err }
