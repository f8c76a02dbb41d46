package gateway

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// places is a fixed number of places for requests being handled, taken without waiting: a
// request finding none is answered 429 at once instead of queueing (a queue would cost memory
// and run into the provider's timeout; the provider retries later).
type places chan struct{}

func (p places) take() bool {
	select {
	case p <- struct{}{}:
		return true
	default:
		return false
	}
}

func (p places) release() { <-p }

// logEvery is the shortest time between two lines of one sometimes: a flood of refusals is
// what an attack looks like, and its log must not become another flood.
const logEvery = time.Second

// sometimes logs one line per logEvery at most, with the number of lines it left out since the
// last one. The zero value is ready; it is safe for concurrent use.
type sometimes struct {
	next    atomic.Int64 // Unix nanoseconds before which lines are left out
	skipped atomic.Int64
}

func (s *sometimes) log(l *slog.Logger, msg string, args ...any) {
	now := time.Now().UnixNano()
	next := s.next.Load()
	if now < next || !s.next.CompareAndSwap(next, now+int64(logEvery)) {
		s.skipped.Add(1)
		return
	}
	l.Warn(msg, append(args, "left_out", s.skipped.Swap(0))...)
}
