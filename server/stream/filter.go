package stream

import (
	"fmt"
	"strconv"
	"strings"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/eventlog"
)

// start turns a start position into the event log's; def is the policy when none is given.
func start(sp *hookstreamv1.StartPosition, def hookstreamv1.StartPosition_Policy) eventlog.Start {
	p := sp.GetPolicy()
	if p == hookstreamv1.StartPosition_POLICY_UNSPECIFIED {
		p = def
	}
	s := eventlog.Start{Policy: p, Sequence: sp.GetSequence()}
	if sp.GetTime() != nil {
		s.Time = sp.GetTime().AsTime()
	}
	return s
}

// pageToken encodes the next sequence to read.
func pageToken(seq uint64) string { return "s" + strconv.FormatUint(seq, 10) }

func parsePageToken(tok string) (uint64, error) {
	seq, err := strconv.ParseUint(strings.TrimPrefix(tok, "s"), 10, 64)
	if err != nil || !strings.HasPrefix(tok, "s") || seq == 0 {
		return 0, fmt.Errorf("%w: page token %q", eventlog.ErrBadFilter, tok)
	}
	return seq, nil
}
