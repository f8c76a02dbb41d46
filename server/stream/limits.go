package stream

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hookstream/hookstream/server/auth"
)

// ErrTooManyStreams is wrapped by the refusal of a Tail or Subscribe beyond
// Options.MaxStreamsPerPrincipal or Options.MaxStreams.
var ErrTooManyStreams = errors.New("too many open streams")

// Anonymous is the principal the streams of calls without one count under: every caller of an
// internal API without authentication (which listens on loopback only).
const Anonymous = "anonymous"

// streamLimiter counts the open streams, per principal and in all. It is safe for concurrent use.
type streamLimiter struct {
	perPrincipal, total int

	mu     sync.Mutex
	open   map[string]int
	opened int
}

func newStreamLimiter(perPrincipal, total int) *streamLimiter {
	return &streamLimiter{perPrincipal: perPrincipal, total: total, open: map[string]int{}}
}

// acquire takes a slot of principal's, to be given back with release exactly once. Errors wrap
// ErrTooManyStreams.
func (l *streamLimiter) acquire(principal string) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.open[principal] >= l.perPrincipal:
		return nil, fmt.Errorf("%w: principal %q holds %d, the most one principal may", ErrTooManyStreams, principal, l.perPrincipal)
	case l.opened >= l.total:
		return nil, fmt.Errorf("%w: %d are open, the most the server allows", ErrTooManyStreams, l.total)
	}
	l.open[principal]++
	l.opened++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.opened--
			if l.open[principal]--; l.open[principal] == 0 {
				delete(l.open, principal)
			}
		})
	}, nil
}

// admit takes a stream slot for the call of ctx, a kind ("tail", "subscribe") of stream; release
// gives it back. Over a limit it logs the refusal and returns RESOURCE_EXHAUSTED.
func (s *Service) admit(ctx context.Context, kind string) (release func(), err error) {
	principal := principalOf(ctx)
	release, err = s.streams.acquire(principal)
	if err != nil {
		s.logger.Warn("stream refused: limit reached", "kind", kind, "principal", principal, "reason", err.Error())
		return nil, exhausted("TOO_MANY_STREAMS", "too many open streams: close one, or retry later")
	}
	return release, nil
}

// principalOf is the name of the principal of the call of ctx, Anonymous without one.
func principalOf(ctx context.Context) string {
	if p, ok := auth.FromContext(ctx); ok {
		return p.Name
	}
	return Anonymous
}

// exhausted is a RESOURCE_EXHAUSTED status with an ErrorInfo of reason.
func exhausted(reason, msg string) error {
	st := status.New(codes.ResourceExhausted, msg)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: "hookstream"}); err == nil {
		st = d
	}
	return st.Err()
}
