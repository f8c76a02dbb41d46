package eventlog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// IDHeader carries the id (a UUIDv7) of every stored event and quarantine entry, so that it can
// be found by id without decoding messages.
const IDHeader = "Hookstream-Id"

// MaxAppendDelay is the longest a message can take from getting its id to being stored (an
// append times out before that); Find scans no further than this past the id's time.
const MaxAppendDelay = 30 * time.Second

// ErrNotFound is returned by Find for an id that is not stored (or no longer retained).
var ErrNotFound = errors.New("not found")

// find returns the message of stream whose IDHeader is id. Ids are UUIDv7, which carry the time
// they were made, and messages are stored within MaxAppendDelay of that: Find reads from a second
// before that time and stops after it, so it costs the messages stored in that window, not the
// whole stream. Errors: ErrNotFound, or one wrapping ErrUnavailable.
func (l *Log) find(ctx context.Context, stream, id string) (*jetstream.RawStreamMsg, error) {
	u, err := uuid.Parse(id)
	if err != nil || u.Version() != 7 {
		return nil, ErrNotFound
	}
	sec, nsec := u.Time().UnixTime()
	at := time.Unix(sec, nsec)
	opts := []jetstreamext.GetBatchOpt{jetstreamext.GetBatchStartTime(at.Add(-time.Second))}
	for {
		msgs, err := jetstreamext.GetBatch(ctx, l.js, stream, 256, opts...)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		n := 0
		var last uint64
		for m, err := range msgs {
			if errors.Is(err, jetstreamext.ErrNoMessages) || errors.Is(err, jetstream.ErrMsgNotFound) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
			n++
			last = m.Sequence
			if m.Header.Get(IDHeader) == id {
				return m, nil
			}
			if m.Time.After(at.Add(MaxAppendDelay)) {
				return nil, ErrNotFound
			}
		}
		if n == 0 {
			return nil, ErrNotFound
		}
		opts = []jetstreamext.GetBatchOpt{jetstreamext.GetBatchSeq(last + 1)}
	}
}
