package logs

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"
)

func TestNew(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		level   string
		want    []string // messages written of one line per level
		wantErr error
	}{
		{name: "debug", level: "debug", want: []string{"d", "i", "w", "e"}},
		{name: "info", level: "info", want: []string{"i", "w", "e"}},
		{name: "warn", level: "warn", want: []string{"w", "e"}},
		{name: "error", level: "error", want: []string{"e"}},
		{name: "unknown", level: "verbose", wantErr: ErrLevel},
		{name: "empty", level: "", wantErr: ErrLevel},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			l, err := New(&buf, tc.level)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("New(%q): got error %v, want %v", tc.level, err, tc.wantErr)
			}
			if err != nil {
				return
			}
			l.Debug("d")
			l.Info("i")
			l.Warn("w")
			l.Error("e")
			var got []string
			for _, line := range lines(t, &buf) {
				got = append(got, line["msg"].(string))
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got lines %q, want %q", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("line %d: got %q, want %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// TestSometimes floods a Sometimes on a clock that stands still, then moves the clock past
// Every: the flood writes one line, the next line counts what was left out.
func TestSometimes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		flood int
	}{
		{name: "one", flood: 1},
		{name: "thousand", flood: 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			l := slog.New(slog.NewJSONHandler(&buf, nil))
			clock := time.Unix(1000, 0)
			s := &Sometimes{now: func() time.Time { return clock }}
			for range tc.flood {
				s.Warn(l, "refused", "remote", "192.0.2.1:1234")
			}
			clock = clock.Add(Every)
			s.Warn(l, "refused", "remote", "192.0.2.1:1234")
			got := lines(t, &buf)
			if len(got) != 2 {
				t.Fatalf("got %d lines, want 2", len(got))
			}
			for i, want := range []float64{0, float64(tc.flood - 1)} {
				if got[i]["left_out"] != want || got[i]["remote"] != "192.0.2.1:1234" {
					t.Errorf("line %d: got %v, want left_out %v and the remote", i, got[i], want)
				}
			}
		})
	}
}

func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, b := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		if len(b) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("line %q: %v", b, err)
		}
		out = append(out, m)
	}
	return out
}
