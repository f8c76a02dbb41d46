package stream

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/eventlog"
)

// errBadFilter is wrapped by errors for start positions and page tokens that cannot be used.
var errBadFilter = eventlog.ErrBadFilter

// startPolicy turns a start position into JetStream's deliver policy; def is the policy when
// none is given.
func startPolicy(sp *hookstreamv1.StartPosition, def hookstreamv1.StartPosition_Policy) (jetstream.DeliverPolicy, uint64, *time.Time, error) {
	p := sp.GetPolicy()
	if p == hookstreamv1.StartPosition_POLICY_UNSPECIFIED {
		p = def
	}
	switch p {
	case hookstreamv1.StartPosition_POLICY_NEW:
		return jetstream.DeliverNewPolicy, 0, nil, nil
	case hookstreamv1.StartPosition_POLICY_ALL:
		return jetstream.DeliverAllPolicy, 0, nil, nil
	case hookstreamv1.StartPosition_POLICY_SEQUENCE:
		if sp.GetSequence() == 0 {
			return 0, 0, nil, fmt.Errorf("%w: start sequence must be at least 1", errBadFilter)
		}
		return jetstream.DeliverByStartSequencePolicy, sp.GetSequence(), nil, nil
	case hookstreamv1.StartPosition_POLICY_TIME:
		if sp.GetTime() == nil {
			return 0, 0, nil, fmt.Errorf("%w: start time missing", errBadFilter)
		}
		t := sp.GetTime().AsTime()
		return jetstream.DeliverByStartTimePolicy, 0, &t, nil
	}
	return 0, 0, nil, fmt.Errorf("%w: start policy %d", errBadFilter, p)
}

// pageToken encodes the next sequence to read.
func pageToken(seq uint64) string { return "s" + strconv.FormatUint(seq, 10) }

func parsePageToken(tok string) (uint64, error) {
	seq, err := strconv.ParseUint(strings.TrimPrefix(tok, "s"), 10, 64)
	if err != nil || !strings.HasPrefix(tok, "s") || seq == 0 {
		return 0, fmt.Errorf("%w: page token %q", errBadFilter, tok)
	}
	return seq, nil
}
