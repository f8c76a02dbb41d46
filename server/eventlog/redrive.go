package eventlog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
)

// RedriveSubjectPrefix starts the subjects of redriven dead letters in the events stream:
// RedriveSubjectPrefix.<group> holds those of one consumer group. Every group's filter holds its
// own redrive subject beside the event subjects it asked for; no other consumer's filter (other
// groups, ephemeral subscriptions, tails) and no listing (ListEvents, FindEvent, the dedup of
// events) reads these subjects, so a redriven dead letter reaches its group alone.
const RedriveSubjectPrefix = "hookstream.redrive"

// Headers of a redriven dead letter.
const (
	// RedriveHeader carries the id of the quarantine entry a redriven dead letter came from.
	RedriveHeader = "Hookstream-Redrive"
	// SequenceHeader carries the stream sequence the event of a redriven dead letter was first
	// stored at: the event is delivered with it, as the event it was.
	SequenceHeader = "Hookstream-Sequence"
)

// ErrNotDeadLetter is returned by Redrive for an entry that is not a dead letter holding its
// event.
var ErrNotDeadLetter = errors.New("not a dead letter holding its event")

// redriveSubject is the subject of the redriven dead letters of group, whose name is a subject
// token (letters, digits, "-" and "_": a JetStream durable name holds no ".", "*" or ">").
func redriveSubject(group string) string { return RedriveSubjectPrefix + "." + group }

// isRedrive reports whether subject holds redriven dead letters.
func isRedrive(subject string) bool { return strings.HasPrefix(subject, RedriveSubjectPrefix+".") }

// groupName is the token-safe name of a consumer group, or "" when name cannot be one.
func groupName(name string) string {
	if name == "" || len(name) > 64 || strings.ContainsFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) {
		return ""
	}
	return name
}

// eventSubjects returns subjects, or every event subject when there are none: an empty filter
// selects the events, not the redriven dead letters of the groups.
func eventSubjects(subjects []string) []string {
	if len(subjects) == 0 {
		return []string{EventsSubjectPrefix + ".>"}
	}
	return subjects
}

// filterOf returns the event subjects of a group's filter, without its redrive subject.
func filterOf(cfg jetstream.ConsumerConfig) []string {
	have := slices.Clone(cfg.FilterSubjects)
	if len(have) == 0 && cfg.FilterSubject != "" {
		have = []string{cfg.FilterSubject}
	}
	return slices.DeleteFunc(have, isRedrive)
}

// withRedrive returns the config of a group (Durable "group-<name>") with its redrive subject in
// its filter, and whether it had to be added (a group created before redrives went back to their
// group, or one just being created).
func withRedrive(cfg jetstream.ConsumerConfig) (jetstream.ConsumerConfig, bool) {
	subject := redriveSubject(strings.TrimPrefix(cfg.Durable, groupPrefix))
	if slices.Contains(cfg.FilterSubjects, subject) {
		return cfg, false
	}
	cfg.FilterSubjects = append(eventSubjects(filterOf(cfg)), subject)
	cfg.FilterSubject = ""
	return cfg, true
}

// Redrive sends the event of a dead letter back to the consumer group that gave it up, and to
// no other: it is stored again, with its own id, payload and first sequence, on the group's
// redrive subject (see RedriveSubjectPrefix), and the group delivers it as a new delivery
// (attempt 1). The Nats-Msg-Id is the entry's id, so a redrive retried inside the duplicate
// window is answered as a duplicate (Result.Duplicate) and delivered once. It fits the log: the
// message is the entry's event and a few headers, smaller than the entry, which fitted.
//
// A group stored without its redrive subject (created by an older hookstream and not opened
// since) gets it first. Nothing is stored when Redrive returns ErrNotDeadLetter, ErrGroupNotFound
// (the group does not exist: deleted, expired, or an ephemeral subscription's) or an error
// wrapping ErrGroupMismatch (a group of that name whose filter does not select the event: made
// again since, with another filter). Other errors wrap ErrTooLarge or ErrUnavailable.
func (l *Log) Redrive(ctx context.Context, entry *hookstreamv1.QuarantineEntry) (Result, error) {
	if entry.GetReason() != hookstreamv1.QuarantineEntry_REASON_DEAD_LETTER || entry.GetEvent().GetPayload() == nil {
		return Result{}, ErrNotDeadLetter
	}
	group := groupName(entry.GetConsumerGroup())
	if group == "" {
		return Result{}, ErrGroupNotFound
	}
	if err := l.readyForRedrive(ctx, group, Subject(entry.GetEvent().GetProvider(), entry.GetEvent().GetType())); err != nil {
		return Result{}, err
	}
	data, err := proto.Marshal(entry.GetEvent())
	if err != nil {
		return Result{}, fmt.Errorf("encode event: %w", err)
	}
	m := &nats.Msg{Subject: redriveSubject(group), Header: nats.Header{}, Data: data}
	m.Header.Set(jetstream.MsgIDHeader, "redrive:"+entry.GetId())
	m.Header.Set(RedriveHeader, entry.GetId())
	m.Header.Set(SequenceHeader, strconv.FormatUint(entry.GetEvent().GetSequence(), 10))
	res, err := l.appendWithin(ctx, l.events, entryBudget(l.bodyLimit), []*nats.Msg{m})
	if err != nil {
		return Result{}, err
	}
	return res[0], res[0].Err
}

// readyForRedrive checks that group exists and selects the events of subject, and that its
// filter holds its redrive subject, adding it when it does not. Errors: ErrGroupNotFound,
// ErrGroupMismatch, or errors wrapping ErrUnavailable.
func (l *Log) readyForRedrive(ctx context.Context, group, subject string) error {
	stream, err := l.js.Stream(ctx, EventsStream)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	c, err := stream.Consumer(ctx, groupPrefix+group)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		return ErrGroupNotFound
	case err != nil:
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	selects := func(f string) bool { return covers(f, subject) }
	if !slices.ContainsFunc(eventSubjects(filterOf(c.CachedInfo().Config)), selects) {
		// A group of the same name made since, with another filter.
		return fmt.Errorf("%w: group %s does not select %s", ErrGroupMismatch, group, subject)
	}
	if cfg, added := withRedrive(c.CachedInfo().Config); added {
		if _, err := stream.UpdateConsumer(ctx, cfg); err != nil {
			return fmt.Errorf("%w: add the redrive subject to group %s: %w", ErrUnavailable, group, err)
		}
	}
	return nil
}

// redrivenSequence returns, for a message of a redrive subject, the sequence its event was
// first stored at; 0 for any other message.
func redrivenSequence(m jetstream.Msg) uint64 {
	if !isRedrive(m.Subject()) {
		return 0
	}
	seq, _ := strconv.ParseUint(m.Headers().Get(SequenceHeader), 10, 64)
	return seq
}
