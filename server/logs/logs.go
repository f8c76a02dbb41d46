// Package logs is hookstream's structured logging: the slog JSON logger of `hookstream serve`,
// at the level of the log.level setting, and Sometimes, which writes the lines of a flood (the
// refused requests of an attack) at a rate limit, so that its log cannot fill the disk.
package logs

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"
)

// ErrLevel is wrapped by New's error for a level it does not know.
var ErrLevel = errors.New("unknown log level")

// New returns a logger writing JSON lines to w at level and above (see ParseLevel). Errors wrap
// ErrLevel.
func New(w io.Writer, level string) (*slog.Logger, error) {
	l, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// ParseLevel returns the level of a log.level setting: "debug", "info", "warn" or "error"
// (package config holds the default). Errors wrap ErrLevel.
func ParseLevel(level string) (slog.Level, error) {
	switch level {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%w %q: want debug, info, warn or error", ErrLevel, level)
}

// Every is the shortest time between two lines of a Sometimes.
const Every = time.Second

// Sometimes writes one warning per Every at most, with "left_out": the number of lines it left
// out since the one before. A flood of refusals is what an attack looks like, and its log must
// not become another flood. The zero value is ready; it is safe for concurrent use.
type Sometimes struct {
	next    atomic.Int64 // Unix nanoseconds before which lines are left out
	skipped atomic.Int64
	// now is the clock; nil is time.Now (tests set it).
	now func() time.Time
}

// Warn writes msg with args to l at level warn, unless a line was written less than Every ago:
// then it only counts the line as left out.
func (s *Sometimes) Warn(l *slog.Logger, msg string, args ...any) {
	now := time.Now
	if s.now != nil {
		now = s.now
	}
	t := now().UnixNano()
	next := s.next.Load()
	if t < next || !s.next.CompareAndSwap(next, t+int64(Every)) {
		s.skipped.Add(1)
		return
	}
	l.Warn(msg, append(args, "left_out", s.skipped.Swap(0))...)
}
