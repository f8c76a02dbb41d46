package eventlog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
)

// ErrTooLarge is wrapped by the Result of an event or quarantine entry that does not fit the
// log's size budget (see EventBudget). With a body limit the budget was derived from, it means a
// payload grew more than the budget allows for when typed: a defect, not a provider's fault.
var ErrTooLarge = errors.New("too large for the event log")

// The size budget. Every event carries its raw JSON and its typed payload, so a body the front
// door accepts becomes a bigger message; the log is sized so that every body within the body
// limit fits, with its envelope, as an event and as a quarantine entry (dead letters included).
const (
	// typedExpansion bounds how many times larger than its JSON a payload's binary protobuf form
	// can be. The worst JSON is a list of one-digit numbers ("[0,0,…]", 2 bytes an element):
	// each becomes a google.protobuf.Value double of 11 bytes (5.5×). Every other construct grows
	// less (strings, objects and typed fields shrink or grow by at most 2.25×); the front door's
	// tests post the worst case at the limit on every route.
	typedExpansion = 6
	// envelopeAllowance is room for what an event or entry carries beside its payload: ids,
	// type, source, dedup key (types and keys are bounded by the schemas to a few hundred bytes),
	// headers, at most maxViolations violations, and NATS headers.
	envelopeAllowance = 64 << 10
	// maxPayloadLimit is the largest max_payload nats-server accepts.
	maxPayloadLimit = 64 << 20
)

// EventBudget returns the largest encoded event a body of at most bodyLimit bytes can become:
// the raw bytes once, the typed payload, and the envelope.
func EventBudget(bodyLimit int64) int64 {
	return (1+typedExpansion)*bodyLimit + envelopeAllowance
}

// entryBudget returns the largest quarantine entry: a dead letter holds its whole event.
func entryBudget(bodyLimit int64) int64 { return EventBudget(bodyLimit) + envelopeAllowance }

// MaxBodyLimit is the largest body limit the log can take: its quarantine entries must fit
// nats-server's largest max_payload.
const MaxBodyLimit = (maxPayloadLimit - 2*envelopeAllowance) / (1 + typedExpansion)

// MaxEventBytes returns the largest encoded event the log stores: a response that carries one
// event needs room for that much.
func (l *Log) MaxEventBytes() int { return int(EventBudget(l.bodyLimit)) }

// AppendEvents stores events, each with its id, provider, type and dedup key set, and returns one
// Result per event, in order, once each is stored, recognised as a duplicate (same provider and
// dedup key inside the duplicate window) or has failed. A Result's Err wraps ErrTooLarge,
// ErrUnavailable or ErrClosed. When ctx ends first, AppendEvents returns ctx's error: the events
// may still be stored, and a retry is then answered as a duplicate.
func (l *Log) AppendEvents(ctx context.Context, events ...*hookstreamv1.Event) ([]Result, error) {
	msgs := make([]*nats.Msg, len(events))
	for i, e := range events {
		data, err := proto.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encode event: %w", err)
		}
		msgs[i] = &nats.Msg{Subject: Subject(e.GetProvider(), e.GetType()), Header: nats.Header{}, Data: data}
		if k := e.GetDedupKey(); k != "" {
			msgs[i].Header.Set(jetstream.MsgIDHeader, dedupID(e.GetProvider(), k))
		}
		msgs[i].Header.Set(IDHeader, e.GetId())
	}
	return l.appendWithin(ctx, l.events, EventBudget(l.bodyLimit), msgs)
}

// Quarantine stores entries in the quarantine stream and returns one Result per entry, in order.
// An entry with a dedup key already quarantined inside the duplicate window is not stored again
// (Result.Duplicate, with the sequence of the first). Errors as AppendEvents.
func (l *Log) Quarantine(ctx context.Context, entries ...*hookstreamv1.QuarantineEntry) ([]Result, error) {
	msgs := make([]*nats.Msg, len(entries))
	for i, e := range entries {
		data, err := proto.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encode quarantine entry: %w", err)
		}
		msgs[i] = &nats.Msg{Subject: QuarantineSubject(e.GetProvider(), e.GetReason()), Header: nats.Header{}, Data: data}
		if k := e.GetDedupKey(); k != "" {
			msgs[i].Header.Set(jetstream.MsgIDHeader, dedupID(e.GetProvider(), k))
		}
		msgs[i].Header.Set(IDHeader, e.GetId())
	}
	return l.appendWithin(ctx, l.quarantine, entryBudget(l.bodyLimit), msgs)
}

// appendWithin appends the messages that fit budget through c; the others get ErrTooLarge
// without being sent.
func (l *Log) appendWithin(ctx context.Context, c *Committer, budget int64, msgs []*nats.Msg) ([]Result, error) {
	results := make([]Result, len(msgs))
	send := make([]*nats.Msg, 0, len(msgs))
	index := make([]int, 0, len(msgs))
	for i, m := range msgs {
		if n := msgSize(m); n > budget {
			results[i].Err = fmt.Errorf("%w: %d bytes, budget %d", ErrTooLarge, n, budget)
			c.m.failed(reasonTooLarge, 1)
			continue
		}
		send = append(send, m)
		index = append(index, i)
	}
	if len(send) == 0 {
		return results, nil
	}
	got, err := c.Append(ctx, send...)
	if err != nil {
		return nil, err
	}
	for j, r := range got {
		results[index[j]] = r
	}
	return results, nil
}

// msgSize is what a message counts against max_payload: its data and its headers.
func msgSize(m *nats.Msg) int64 {
	n := int64(len(m.Data)) + 12 // "NATS/1.0\r\n" and the final "\r\n"
	for k, vs := range m.Header {
		for _, v := range vs {
			n += int64(len(k) + len(v) + 4)
		}
	}
	return n
}

// dedupID is the Nats-Msg-Id of a dedup key: a digest of the provider and the key, so that every
// id has the same small size whatever the key (nats-server keeps each id of the duplicate window
// in memory) and no provider's keys can meet another's.
func dedupID(p hookstreamv1.Provider, key string) string {
	h := sha256.New()
	h.Write([]byte(providerToken(p)))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// providerToken is a provider's subject token: "moveapi", "movement", "mvmnt", "listener".
func providerToken(p hookstreamv1.Provider) string {
	return strings.ToLower(strings.TrimPrefix(p.String(), "PROVIDER_"))
}

// reasonToken is a quarantine reason's subject token: "malformed", "invalid", "dead_letter".
func reasonToken(r hookstreamv1.QuarantineEntry_Reason) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "REASON_"))
}

// QuarantineSubject is the subject of a quarantine entry:
// hookstream.quarantine.<provider>.<reason>.
func QuarantineSubject(p hookstreamv1.Provider, r hookstreamv1.QuarantineEntry_Reason) string {
	return QuarantineSubjectPrefix + "." + providerToken(p) + "." + reasonToken(r)
}

// Subject is the event log subject of an event: hookstream.events.<provider>.<type tokens>. The
// type's "."-separated tokens are kept; characters NATS subjects cannot hold (whitespace, "*",
// ">") become "_", an empty token becomes "_", and a type of more than 16 tokens or 256 bytes is
// cut there, so every type has a subject and type patterns match token by token.
func Subject(p hookstreamv1.Provider, typ string) string {
	var b strings.Builder
	b.WriteString(EventsSubjectPrefix)
	b.WriteByte('.')
	b.WriteString(providerToken(p))
	tokens := strings.Split(typ, ".")
	if len(tokens) > 16 {
		tokens = tokens[:16]
	}
	n := 0
	for _, t := range tokens {
		b.WriteByte('.')
		if t == "" {
			b.WriteByte('_')
			continue
		}
		for _, r := range t {
			if n >= 256 {
				break
			}
			switch {
			case r == '*' || r == '>' || r <= ' ' || r == 0x7f || r == '\uFFFD':
				b.WriteByte('_')
			default:
				b.WriteRune(r)
			}
			n++
		}
	}
	return b.String()
}

// FindEvent returns the stored event with id, its sequence set. Errors: ErrNotFound, or one
// wrapping ErrUnavailable.
func (l *Log) FindEvent(ctx context.Context, id string) (*hookstreamv1.Event, error) {
	m, err := l.find(ctx, EventsStream, id)
	if err != nil {
		return nil, err
	}
	e := &hookstreamv1.Event{}
	if err := proto.Unmarshal(m.Data, e); err != nil {
		return nil, fmt.Errorf("%w: event %d: %w", ErrCorrupt, m.Sequence, err)
	}
	e.Sequence = m.Sequence
	return e, nil
}

// FindEntry returns the quarantine entry with id and its sequence in the quarantine stream.
// Errors: ErrNotFound, or one wrapping ErrUnavailable.
func (l *Log) FindEntry(ctx context.Context, id string) (*hookstreamv1.QuarantineEntry, uint64, error) {
	m, err := l.find(ctx, QuarantineStream, id)
	if err != nil {
		return nil, 0, err
	}
	e := &hookstreamv1.QuarantineEntry{}
	if err := proto.Unmarshal(m.Data, e); err != nil {
		return nil, 0, fmt.Errorf("%w: quarantine entry %d: %w", ErrCorrupt, m.Sequence, err)
	}
	return e, m.Sequence, nil
}

// EntryID returns the id of the quarantine entry at seq: for a retry answered as a duplicate,
// the entry made the first time. Errors: ErrNotFound, or one wrapping ErrUnavailable.
func (l *Log) EntryID(ctx context.Context, seq uint64) (string, error) {
	s, err := l.js.Stream(ctx, QuarantineStream)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	m, err := s.GetMsg(ctx, seq)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return "", ErrNotFound
	case err != nil:
		return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return m.Header.Get(IDHeader), nil
}

// DeleteEntry removes the quarantine entry at seq (a redriven, deleted or purged entry); an entry
// already gone is no error. Errors wrap ErrUnavailable.
func (l *Log) DeleteEntry(ctx context.Context, seq uint64) error {
	s, err := l.js.Stream(ctx, QuarantineStream)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := s.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// ErrCorrupt is wrapped by errors for stored messages that do not decode.
var ErrCorrupt = errors.New("stored message does not decode")
