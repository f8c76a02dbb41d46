package eventlog

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// read returns, in sequence order, the messages of stream with a sequence of at least from whose
// subject matches subject, at most max of them and at most maxBytes of data in all (but always
// the first), and the sequence to continue from, 0 at the end of the stream.
// TEMPORARY: replaced by the complete, cluster-safe version.
func (l *Log) read(ctx context.Context, stream string, subjects []string, from uint64, limit, maxBytes int) ([]*jetstream.RawStreamMsg, uint64, error) {
	subject := ">"
	if len(subjects) == 1 {
		subject = subjects[0]
	}
	msgs, err := jetstreamext.GetBatch(ctx, l.js, stream, limit, jetstreamext.GetBatchSeq(max(from, 1)), jetstreamext.GetBatchSubject(subject))
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var out []*jetstream.RawStreamMsg
	size := 0
	var next uint64
	for m, err := range msgs {
		if errors.Is(err, jetstreamext.ErrNoMessages) || errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		if len(out) > 0 && size+len(m.Data) > maxBytes {
			next = m.Sequence
			break
		}
		out = append(out, m)
		size += len(m.Data)
		next = m.Sequence + 1
	}
	if len(out) < limit && next == 0 {
		return out, 0, nil
	}
	return out, next, nil
}
