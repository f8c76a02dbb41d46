package eventlog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	mvmntv1 "github.com/hookstream/hookstream/gen/hookstream/mvmnt/v1"
	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// ErrBadFilter is wrapped by errors for filters that cannot be used.
var ErrBadFilter = errors.New("bad filter")

var allProviders = []hookstreamv1.Provider{
	hookstreamv1.Provider_PROVIDER_MOVEAPI,
	hookstreamv1.Provider_PROVIDER_MOVEMENT,
	hookstreamv1.Provider_PROVIDER_MVMNT,
	hookstreamv1.Provider_PROVIDER_LISTENER,
}

// FilterSubjects turns a filter into the subjects of the events it selects: one per provider and
// type pattern, and for a prefix pattern (see checkPattern) one per documented type it matches.
// An empty filter selects every event (not the redriven dead letters of the groups). Errors wrap ErrBadFilter and name the pattern.
func FilterSubjects(f *hookstreamv1.EventFilter) ([]string, error) {
	named := f.GetProviders()
	providers := named
	if len(providers) == 0 {
		providers = allProviders
	}
	patterns := f.GetTypes()
	if len(patterns) == 0 {
		patterns = []string{">"}
	}
	for _, p := range patterns {
		if err := checkPattern(p); err != nil {
			return nil, err
		}
	}
	for _, prov := range providers {
		if _, ok := hookstreamv1.Provider_name[int32(prov)]; !ok || prov == hookstreamv1.Provider_PROVIDER_UNSPECIFIED {
			return nil, fmt.Errorf("%w: provider %d", ErrBadFilter, prov)
		}
	}
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, p := range patterns {
		if !isPrefixPattern(p) {
			for _, prov := range providers {
				add(EventsSubjectPrefix + "." + providerToken(prov) + "." + p)
			}
			continue
		}
		subjects, err := expandPrefix(p, providers, len(named) > 0)
		if err != nil {
			return nil, err
		}
		for _, s := range subjects {
			add(s)
		}
	}
	return out, nil
}

// documentedTypes lists, for each provider whose event types are a closed documented set, the
// subject tokens of those types: MVMNT's are the names of the mvmnt.v1.EventType enum.
// JetStream subject filters match whole tokens only, so a prefix pattern is expanded here into
// the exact subjects of the documented types it matches; the consumer's filter stays exact and
// every event it delivers is one the client asked for (nothing to skip, ack or redeliver here).
var documentedTypes = map[hookstreamv1.Provider][]string{
	hookstreamv1.Provider_PROVIDER_MVMNT: func() []string {
		var out []string
		for num, full := range mvmntv1.EventType_name {
			if num != int32(mvmntv1.EventType_EVENT_TYPE_UNSPECIFIED) {
				out = append(out, strings.TrimPrefix(full, "EVENT_TYPE_"))
			}
		}
		slices.Sort(out)
		return out
	}(),
}

// expandPrefix returns the subjects of the documented types of providers that prefix pattern p
// matches. A provider without documented types is refused when named, and skipped when the
// filter names no provider; a pattern that matches no documented type is refused.
func expandPrefix(p string, providers []hookstreamv1.Provider, named bool) ([]string, error) {
	var out []string
	for _, prov := range providers {
		types, ok := documentedTypes[prov]
		if !ok {
			if named {
				return nil, fmt.Errorf("%w: type pattern %q: prefix patterns need a provider with documented types (mvmnt), not %s", ErrBadFilter, p, providerToken(prov))
			}
			continue
		}
		for _, typ := range types {
			if matchPattern(p, typ) {
				out = append(out, EventsSubjectPrefix+"."+providerToken(prov)+"."+typ)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: type pattern %q matches no documented type", ErrBadFilter, p)
	}
	return out, nil
}

// isPrefixPattern reports whether p's last token ends in "*" after at least one other character
// ("SHIPMENT_*"); checkPattern has accepted p.
func isPrefixPattern(p string) bool {
	last := p[strings.LastIndexByte(p, '.')+1:]
	return len(last) > 1 && strings.HasSuffix(last, "*")
}

// matchPattern reports whether the "."-separated tokens of typ match pattern p token by token:
// "*" any one token, ">" the rest, "X*" any token starting with X, anything else itself.
func matchPattern(p, typ string) bool {
	pt, tt := strings.Split(p, "."), strings.Split(typ, ".")
	for i, t := range pt {
		switch {
		case t == ">":
			return len(tt) > i
		case i >= len(tt):
			return false
		case t == "*":
		case len(t) > 1 && strings.HasSuffix(t, "*"):
			if !strings.HasPrefix(tt[i], strings.TrimSuffix(t, "*")) {
				return false
			}
		case t != tt[i]:
			return false
		}
	}
	return len(pt) == len(tt)
}

// checkPattern accepts type patterns of "."-separated tokens, "*" for one token, ">" as the
// last token for the rest, and a last token of a prefix and "*" ("SHIPMENT_*") for every
// documented type starting with that prefix. A wildcard anywhere else in a token ("*FOO",
// "SHIP*MENT") is refused.
func checkPattern(p string) error {
	if p == "" {
		return fmt.Errorf("%w: empty type pattern", ErrBadFilter)
	}
	tokens := strings.Split(p, ".")
	for i, t := range tokens {
		last := i == len(tokens)-1
		switch {
		case t == "":
			return fmt.Errorf("%w: type pattern %q has an empty token", ErrBadFilter, p)
		case t == ">" && !last:
			return fmt.Errorf("%w: type pattern %q: \">\" must be the last token", ErrBadFilter, p)
		case t == "*" || t == ">":
		case strings.ContainsAny(t, "> \t\r\n"):
			return fmt.Errorf("%w: type pattern %q: wildcards must be whole tokens", ErrBadFilter, p)
		case strings.Contains(strings.TrimSuffix(t, "*"), "*") || (strings.HasSuffix(t, "*") && !last):
			return fmt.Errorf("%w: type pattern %q: \"*\" inside a token must end the last token", ErrBadFilter, p)
		}
	}
	return nil
}

// EntrySubject is the subject of the quarantine entries of a provider and reason; unspecified
// values select every provider or reason.
func EntrySubject(p hookstreamv1.Provider, r hookstreamv1.QuarantineEntry_Reason) string {
	provider, reason := "*", "*"
	if p != hookstreamv1.Provider_PROVIDER_UNSPECIFIED {
		provider = providerToken(p)
	}
	if r != hookstreamv1.QuarantineEntry_REASON_UNSPECIFIED {
		reason = reasonToken(r)
	}
	return QuarantineSubjectPrefix + "." + provider + "." + reason
}

// ListEvents returns the events on subjects (FilterSubjects; none: every event, never the
// redriven dead letters of the groups, copies of events listed already) with a sequence of at
// least from, oldest first, at most limit of them and at most maxBytes of encoded events in all
// (but always one, however big), their sequences set, and the sequence to go on from (0 at the
// end). No consumer is made: a listing is stateless. Errors wrap ErrUnavailable or ErrCorrupt.
func (l *Log) ListEvents(ctx context.Context, subjects []string, from uint64, limit, maxBytes int) ([]*hookstreamv1.Event, uint64, error) {
	msgs, next, err := l.read(ctx, EventsStream, eventSubjects(subjects), from, limit, maxBytes)
	if err != nil {
		return nil, 0, err
	}
	out := make([]*hookstreamv1.Event, len(msgs))
	for i, m := range msgs {
		if out[i], err = decodeEvent(m.Sequence, m.Data); err != nil {
			return nil, 0, err
		}
	}
	return out, next, nil
}

// ListEntries is ListEvents for the quarantine: the entries on subject (EntrySubject), with
// their sequences in the quarantine stream.
func (l *Log) ListEntries(ctx context.Context, subject string, from uint64, limit, maxBytes int) ([]*hookstreamv1.QuarantineEntry, uint64, error) {
	msgs, next, err := l.read(ctx, QuarantineStream, []string{subject}, from, limit, maxBytes)
	if err != nil {
		return nil, 0, err
	}
	out := make([]*hookstreamv1.QuarantineEntry, len(msgs))
	for i, m := range msgs {
		out[i] = &hookstreamv1.QuarantineEntry{}
		if err := proto.Unmarshal(m.Data, out[i]); err != nil {
			return nil, 0, fmt.Errorf("%w: quarantine entry %d: %w", ErrCorrupt, m.Sequence, err)
		}
	}
	return out, next, nil
}

func decodeEvent(seq uint64, data []byte) (*hookstreamv1.Event, error) {
	e := &hookstreamv1.Event{}
	if err := proto.Unmarshal(data, e); err != nil {
		return nil, fmt.Errorf("%w: event %d: %w", ErrCorrupt, seq, err)
	}
	e.Sequence = seq
	return e, nil
}

// Usage is what the log's streams hold.
type Usage struct {
	// Events and EventBytes are the messages of the events stream and their size on disk: the
	// events, and the dead letters redriven to their groups (see RedriveSubjectPrefix).
	Events, EventBytes uint64
	// Entries and EntryBytes are the quarantine entries stored and their size on disk.
	Entries, EntryBytes uint64
}

// Usage returns what the log's streams hold. Errors wrap ErrUnavailable.
func (l *Log) Usage(ctx context.Context) (Usage, error) {
	var u Usage
	for _, s := range []struct {
		name        string
		msgs, bytes *uint64
	}{{EventsStream, &u.Events, &u.EventBytes}, {QuarantineStream, &u.Entries, &u.EntryBytes}} {
		st, err := l.js.Stream(ctx, s.name)
		if err != nil {
			return Usage{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			return Usage{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		*s.msgs, *s.bytes = info.State.Msgs, info.State.Bytes
	}
	return u, nil
}

// SequenceAt returns the sequence of the first event stored at or after t, 0 when there is none.
// Errors wrap ErrUnavailable.
func (l *Log) SequenceAt(ctx context.Context, t time.Time) (uint64, error) {
	msgs, err := jetstreamext.GetBatch(ctx, l.js, EventsStream, 1, jetstreamext.GetBatchStartTime(t), jetstreamext.GetBatchSubject(EventsSubjectPrefix+".>"))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	for m, err := range msgs {
		switch {
		case errors.Is(err, jetstreamext.ErrNoMessages), errors.Is(err, jetstream.ErrMsgNotFound):
			return 0, nil
		case err != nil:
			return 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return m.Sequence, nil
	}
	return 0, nil
}

// purgePage is how many quarantine messages PurgeEntries reads at a time.
const purgePage = 256

// PurgeEntries removes the quarantine entries on subject (EntrySubject) stored before before
// (any time when before is zero) and returns how many it removed. It reads the stream a page at
// a time with direct gets and deletes entries one by one, so entries quarantined while it runs
// are kept unless they match. Errors wrap ErrUnavailable; what was removed before an error
// stays removed.
func (l *Log) PurgeEntries(ctx context.Context, subject string, before time.Time) (uint64, error) {
	var purged uint64
	for from := uint64(1); from != 0; {
		msgs, next, err := l.read(ctx, QuarantineStream, []string{subject}, from, purgePage, 1<<30)
		if err != nil {
			return purged, err
		}
		for _, m := range msgs {
			if !before.IsZero() && !m.Time.Before(before) {
				continue
			}
			if err := l.DeleteEntry(ctx, m.Sequence); err != nil {
				return purged, err
			}
			purged++
		}
		from = next
	}
	return purged, nil
}
