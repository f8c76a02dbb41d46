package eventlog

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protowire"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
)

// Errors of the administration of consumer groups.
var (
	// ErrTooManyGroups is wrapped by OpenGroup's error for a new group when Options.MaxGroups
	// groups exist.
	ErrTooManyGroups = errors.New("too many consumer groups")
	// ErrGroupNotFound is returned by the administration of a group that does not exist.
	ErrGroupNotFound = errors.New("no such consumer group")
)

// groupPrefix starts the consumer name of every group: "group-<name>".
const groupPrefix = "group-"

// Group is a consumer group as the log keeps it.
type Group struct {
	// Name is the group's name, as subscribers open it.
	Name string
	// Created is when the group was created.
	Created time.Time
	// Pending is how many events of the group's filter are stored and not yet delivered to it.
	Pending uint64
	// Unacknowledged is how many events were delivered to the group and not yet acknowledged.
	Unacknowledged uint64
	// LastDelivered is when an event was last delivered to the group; zero when none ever was.
	LastDelivered time.Time
	// IdleExpiry is how long the group may go unread before the log deletes it; 0 when it is kept
	// until deleted.
	IdleExpiry time.Duration
	// Redelivered is how many of the unacknowledged events were delivered more than once.
	Redelivered uint64
	// Paused says whether deliveries to the group are paused; PausedUntil is when the pause ends,
	// zero for a pause until ResumeGroup.
	Paused      bool
	PausedUntil time.Time
	// AckWait and MaxDeliveries are the group's settings (see ConsumerConfig).
	AckWait       time.Duration
	MaxDeliveries int
	// Delivered is the stream sequence of the last event delivered to the group, AckFloor the one
	// up to which every event of its filter is acknowledged.
	Delivered, AckFloor uint64
}

// pauseIndefinitely is the end of a pause until ResumeGroup: JetStream pauses only until a time.
var pauseIndefinitely = time.Date(9999, time.December, 31, 0, 0, 0, 0, time.UTC)

// groupOf is the Group of a consumer's info; ok is false for a consumer that is not a group.
func groupOf(info *jetstream.ConsumerInfo) (g Group, ok bool) {
	name, ok := strings.CutPrefix(info.Name, groupPrefix)
	if !ok {
		return Group{}, false
	}
	g = Group{
		Name: name, Created: info.Created, Pending: info.NumPending, Unacknowledged: uint64(info.NumAckPending),
		IdleExpiry: info.Config.InactiveThreshold, Redelivered: uint64(info.NumRedelivered), Paused: info.Paused,
		AckWait: info.Config.AckWait, Delivered: info.Delivered.Stream, AckFloor: info.AckFloor.Stream,
	}
	if last := info.Delivered.Last; last != nil {
		g.LastDelivered = *last
	}
	if n, err := strconv.Atoi(info.Config.Metadata["max_deliveries"]); err == nil {
		g.MaxDeliveries = n
	}
	if until := info.Config.PauseUntil; g.Paused && until != nil && until.Before(pauseIndefinitely) {
		g.PausedUntil = *until
	}
	return g, true
}

// Groups returns at most n groups whose names sort after after, by name, and whether more
// follow. Errors wrap ErrUnavailable.
func (l *Log) Groups(ctx context.Context, after string, n int) (groups []Group, more bool, err error) {
	stream, err := l.js.Stream(ctx, EventsStream)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	lister := stream.ListConsumers(ctx)
	for info := range lister.Info() { // read to the end: the lister's goroutine waits otherwise
		if g, ok := groupOf(info); ok && g.Name > after {
			groups = append(groups, g)
		}
	}
	if err := lister.Err(); err != nil {
		return nil, false, fmt.Errorf("%w: list consumers: %w", ErrUnavailable, err)
	}
	slices.SortFunc(groups, func(a, b Group) int { return strings.Compare(a.Name, b.Name) })
	if len(groups) > n {
		return groups[:n], true, nil
	}
	return groups, false, nil
}

// DeleteGroup deletes the group name and its position; its subscribers' fetches end with
// ErrConsumerGone. Errors wrap ErrGroupNotFound or ErrUnavailable.
func (l *Log) DeleteGroup(ctx context.Context, name string) error {
	err := l.js.DeleteConsumer(ctx, EventsStream, groupPrefix+name)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		return ErrGroupNotFound
	case err != nil:
		return fmt.Errorf("%w: delete group %s: %w", ErrUnavailable, name, err)
	}
	return nil
}

// countGroups returns how many groups stream has.
func countGroups(ctx context.Context, stream jetstream.Stream) (int, error) {
	lister := stream.ConsumerNames(ctx)
	n := 0
	for name := range lister.Name() {
		if strings.HasPrefix(name, groupPrefix) {
			n++
		}
	}
	if err := lister.Err(); err != nil {
		return 0, fmt.Errorf("%w: list consumers: %w", ErrUnavailable, err)
	}
	return n, nil
}

// createGroup creates the group of cfg, with its redrive subject (see RedriveSubjectPrefix) in
// its filter, unless MaxGroups groups exist (ErrTooManyGroups). The count and the creation are
// serialised in this process; other hookstream processes on the same cluster may each add one
// beyond the limit at the same instant.
func (l *Log) createGroup(ctx context.Context, stream jetstream.Stream, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	l.groupsMu.Lock()
	defer l.groupsMu.Unlock()
	n, err := countGroups(ctx, stream)
	if err != nil {
		return nil, err
	}
	if n >= l.maxGroups {
		return nil, fmt.Errorf("%w: %d exist, the most allowed", ErrTooManyGroups, n)
	}
	cfg, _ = withRedrive(cfg)
	return stream.CreateConsumer(ctx, cfg)
}

// Group returns the group name. Errors wrap ErrGroupNotFound or ErrUnavailable.
func (l *Log) Group(ctx context.Context, name string) (Group, error) {
	c, err := l.groupConsumer(ctx, name)
	if err != nil {
		return Group{}, err
	}
	g, _ := groupOf(c.CachedInfo())
	return g, nil
}

// groupConsumer looks the group name up. Errors wrap ErrGroupNotFound or ErrUnavailable.
func (l *Log) groupConsumer(ctx context.Context, name string) (jetstream.Consumer, error) {
	c, err := l.js.Consumer(ctx, EventsStream, groupPrefix+name)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		return nil, ErrGroupNotFound
	case err != nil:
		return nil, fmt.Errorf("%w: group %s: %w", ErrUnavailable, name, err)
	}
	return c, nil
}

// ResetGroup moves the group name to start: JetStream consumers cannot seek, so the group's
// consumer is deleted and created again with the new start and every other setting it had
// (filter, ack wait, maximum deliveries, backoff, idle expiry, pause). Its acknowledgements and
// unacknowledged events are forgotten; its subscribers' fetches end with ErrConsumerGone, and
// their next fetches read the new consumer. Should the new consumer be refused, the group is
// created again where its acknowledgements stood (after its ack floor) and the error is
// returned. Errors wrap ErrBadFilter, ErrGroupNotFound, ErrRejected or ErrUnavailable.
func (l *Log) ResetGroup(ctx context.Context, name string, start Start) (Group, error) {
	policy, seq, t, err := start.deliver()
	if err != nil {
		return Group{}, err
	}
	// Serialised with createGroup, so a subscriber of this process cannot create the group
	// anew between the deletion and the creation.
	l.groupsMu.Lock()
	defer l.groupsMu.Unlock()
	c, err := l.groupConsumer(ctx, name)
	if err != nil {
		return Group{}, err
	}
	info := c.CachedInfo()
	cfg := info.Config
	cfg.Metadata = maps.Clone(cfg.Metadata)
	cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = policy, seq, t
	// A group made by an older hookstream gets its redrive subject here too.
	cfg, _ = withRedrive(cfg)
	if err := l.js.DeleteConsumer(ctx, EventsStream, cfg.Durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return Group{}, fmt.Errorf("%w: reset group %s: %w", ErrUnavailable, name, err)
	}
	created, err := l.js.CreateConsumer(ctx, EventsStream, cfg)
	if err != nil {
		cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = jetstream.DeliverByStartSequencePolicy, info.AckFloor.Stream+1, nil
		if _, rerr := l.js.CreateConsumer(ctx, EventsStream, cfg); rerr != nil {
			return Group{}, fmt.Errorf("%w: group %s lost by its reset: %w", ErrUnavailable, name, errors.Join(err, rerr))
		}
		return Group{}, consumerError(err)
	}
	g, _ := groupOf(created.CachedInfo())
	return g, nil
}

// PauseGroup stops deliveries to the group name until until (zero: until ResumeGroup); its
// subscribers' fetches wait meanwhile. Errors wrap ErrGroupNotFound, ErrRejected (until not in
// the future) or ErrUnavailable.
func (l *Log) PauseGroup(ctx context.Context, name string, until time.Time) (Group, error) {
	if until.IsZero() {
		until = pauseIndefinitely
	}
	if !until.After(time.Now()) {
		return Group{}, fmt.Errorf("%w: pause until %s: not in the future", ErrRejected, until.Format(time.RFC3339))
	}
	return l.setPause(ctx, name, func() error {
		_, err := l.js.PauseConsumer(ctx, EventsStream, groupPrefix+name, until)
		return err
	})
}

// ResumeGroup ends the pause of the group name; a group that is not paused is left as it is.
// Errors wrap ErrGroupNotFound or ErrUnavailable.
func (l *Log) ResumeGroup(ctx context.Context, name string) (Group, error) {
	return l.setPause(ctx, name, func() error {
		_, err := l.js.ResumeConsumer(ctx, EventsStream, groupPrefix+name)
		return err
	})
}

// setPause runs change, a pause or resumption of the group name, and returns the group after it.
func (l *Log) setPause(ctx context.Context, name string, change func() error) (Group, error) {
	err := change()
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		return Group{}, ErrGroupNotFound
	case err != nil:
		return Group{}, fmt.Errorf("%w: pause group %s: %w", ErrUnavailable, name, err)
	}
	return l.Group(ctx, name)
}

// DeadLetters returns, by group name, how many dead letters of each group the quarantine holds
// that were not redriven. It reads every dead letter, a page at a time with direct gets, and
// decodes only each entry's consumer_group and redriven_at. Errors wrap ErrUnavailable or
// ErrCorrupt.
func (l *Log) DeadLetters(ctx context.Context) (map[string]uint64, error) {
	subject := EntrySubject(hookstreamv1.Provider_PROVIDER_UNSPECIFIED, hookstreamv1.QuarantineEntry_REASON_DEAD_LETTER)
	counts := map[string]uint64{}
	for from := uint64(1); from != 0; {
		msgs, next, err := l.read(ctx, QuarantineStream, []string{subject}, from, purgePage, 1<<30)
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			group, redriven, err := deadLetterOf(m.Data)
			if err != nil {
				return nil, fmt.Errorf("%w: quarantine entry %d: %w", ErrCorrupt, m.Sequence, err)
			}
			if !redriven {
				counts[group]++
			}
		}
		from = next
	}
	return counts, nil
}

// The fields of hookstream.v1.QuarantineEntry that DeadLetters reads, by number.
var (
	entryFields             = (&hookstreamv1.QuarantineEntry{}).ProtoReflect().Descriptor().Fields()
	entryConsumerGroupField = entryFields.ByName("consumer_group").Number()
	entryRedrivenAtField    = entryFields.ByName("redriven_at").Number()
)

// deadLetterOf reads an encoded QuarantineEntry's consumer_group and whether it has
// redriven_at, without decoding the event it holds.
func deadLetterOf(b []byte) (group string, redriven bool, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", false, protowire.ParseError(n)
		}
		b = b[n:]
		if num == entryConsumerGroupField && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return "", false, protowire.ParseError(n)
			}
			group = string(v)
		}
		redriven = redriven || num == entryRedrivenAtField
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return "", false, protowire.ParseError(n)
		}
		b = b[n:]
	}
	return group, redriven, nil
}
