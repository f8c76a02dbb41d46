package eventlog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Errors of the administration of consumer groups.
var (
	// ErrTooManyGroups is wrapped by OpenGroup's error for a new group when Options.MaxGroups
	// groups exist.
	ErrTooManyGroups = errors.New("too many consumer groups")
	// ErrGroupNotFound is returned by DeleteGroup for a group that does not exist.
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
		name, ok := strings.CutPrefix(info.Name, groupPrefix)
		if !ok || name <= after {
			continue
		}
		g := Group{Name: name, Created: info.Created, Pending: info.NumPending, Unacknowledged: uint64(info.NumAckPending), IdleExpiry: info.Config.InactiveThreshold}
		if last := info.Delivered.Last; last != nil {
			g.LastDelivered = *last
		}
		groups = append(groups, g)
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
