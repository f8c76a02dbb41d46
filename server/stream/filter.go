package stream

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/eventlog"
)

// errBadFilter is wrapped by errors for filters and start positions that cannot be used.
var errBadFilter = errors.New("bad filter")

var allProviders = []hookstreamv1.Provider{
	hookstreamv1.Provider_PROVIDER_MOVEAPI,
	hookstreamv1.Provider_PROVIDER_MOVEMENT,
	hookstreamv1.Provider_PROVIDER_MVMNT,
	hookstreamv1.Provider_PROVIDER_LISTENER,
}

// filterSubjects turns a filter into the JetStream subjects it selects: one per provider and
// type pattern. An empty filter selects the whole stream.
func filterSubjects(f *hookstreamv1.EventFilter) ([]string, error) {
	providers := f.GetProviders()
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
	seen := map[string]bool{}
	var out []string
	for _, prov := range providers {
		name, ok := hookstreamv1.Provider_name[int32(prov)]
		if !ok || prov == hookstreamv1.Provider_PROVIDER_UNSPECIFIED {
			return nil, fmt.Errorf("%w: provider %d", errBadFilter, prov)
		}
		token := strings.ToLower(strings.TrimPrefix(name, "PROVIDER_"))
		for _, p := range patterns {
			s := eventlog.EventsSubjectPrefix + "." + token + "." + p
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out, nil
}

// checkPattern accepts type patterns of "."-separated tokens, "*" for one token and ">" as the
// last token for the rest.
func checkPattern(p string) error {
	if p == "" {
		return fmt.Errorf("%w: empty type pattern", errBadFilter)
	}
	tokens := strings.Split(p, ".")
	for i, t := range tokens {
		switch {
		case t == "":
			return fmt.Errorf("%w: type pattern %q has an empty token", errBadFilter, p)
		case t == ">" && i != len(tokens)-1:
			return fmt.Errorf("%w: type pattern %q: \">\" must be the last token", errBadFilter, p)
		case t != "*" && t != ">" && strings.ContainsAny(t, "*> \t\r\n"):
			return fmt.Errorf("%w: type pattern %q: wildcards must be whole tokens", errBadFilter, p)
		}
	}
	return nil
}

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
