package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	movementv1 "github.com/hookstream/hookstream/gen/hookstream/movement/v1"
	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/cli"
	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/daemon"
	"github.com/hookstream/hookstream/server/internal/testca"
	"github.com/hookstream/hookstream/server/internal/testenv"
)

// serveTwo runs serveSecured's daemon with a Movement event stored after its MVMNT event, and
// returns the two events as `events list` reads them, in log order.
func serveTwo(t *testing.T) (*daemon.Server, *testca.CA, []*hookstreamv1.Event) {
	t.Helper()
	s, ca := serveSecured(t)
	raw := testenv.Sample(t, "movement/call_finished.json", &movementv1.Webhook{})
	resp, err := http.Post("http://"+s.HTTPAddr().String()+"/webhooks/movement?token=movement-secret", "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("store a Movement event: status %d", resp.StatusCode)
	}
	out, err := runCLI(context.Background(), s, ca, readerToken, "events", "list")
	if err != nil {
		t.Fatal(err)
	}
	events := parseEvents(t, out)
	if len(events) != 2 {
		t.Fatalf("got %d stored events, want 2", len(events))
	}
	return s, ca, events
}

// runCLI runs the command line args against s with the bearer token and returns its stdout.
func runCLI(ctx context.Context, s *daemon.Server, ca *testca.CA, token string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	args = append(args, "--server", s.GRPCAddr().String(), "--ca-file", ca.File)
	err := cli.Run(ctx, args, &stdout, &stderr, []string{"HOOKSTREAM_TOKEN=" + token})
	return stdout.String(), err
}

// runFor runs the command line args as runCLI does and interrupts it after d, as Ctrl-C does.
func runFor(d time.Duration, s *daemon.Server, ca *testca.CA, token string, args ...string) (string, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(d, cancel)
	return runCLI(ctx, s, ca, token, args...)
}

// parseEvents reads one protojson Event a line.
func parseEvents(t *testing.T, out string) []*hookstreamv1.Event {
	t.Helper()
	var events []*hookstreamv1.Event
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		ev := &hookstreamv1.Event{}
		if err := protojson.Unmarshal([]byte(line), ev); err != nil {
			t.Fatalf("got line %q, want an Event: %v", line, err)
		}
		events = append(events, ev)
	}
	return events
}

func ids(events []*hookstreamv1.Event) []string {
	var out []string
	for _, ev := range events {
		out = append(out, ev.GetId())
	}
	return out
}

// TestTailJSON runs `hookstream tail --json` with each start position and filter, interrupted
// after a while (or ended by --count), and checks which stored events it printed.
func TestTailJSON(t *testing.T) {
	t.Parallel()
	s, ca, stored := serveTwo(t)
	mvmnt, movement := stored[0], stored[1]
	for _, tt := range []struct {
		name string
		args []string
		want []*hookstreamv1.Event
	}{
		{name: "from_all", args: []string{"--from", "all"}, want: stored},
		{name: "from_new_default", args: nil, want: nil},
		{name: "from_new", args: []string{"--from", "new"}, want: nil},
		{name: "from_sequence", args: []string{"--from", strconv.FormatUint(movement.GetSequence(), 10)}, want: stored[1:]},
		{name: "from_time", args: []string{"--from", movement.GetReceivedAt().AsTime().Format(time.RFC3339Nano)}, want: stored[1:]},
		{name: "provider", args: []string{"--from", "all", "--provider", "movement"}, want: []*hookstreamv1.Event{movement}},
		{name: "providers_repeated", args: []string{"--from", "all", "--provider", "movement", "--provider", "mvmnt"}, want: stored},
		{name: "type_pattern", args: []string{"--from", "all", "--type", "SHIPMENT_*"}, want: []*hookstreamv1.Event{mvmnt}},
		{name: "type_tokens", args: []string{"--from", "all", "--type", "call.*"}, want: []*hookstreamv1.Event{movement}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := runFor(2*time.Second, s, ca, readerToken, append([]string{"tail", "--json"}, tt.args...)...)
			if err != nil {
				t.Fatalf("got %v, want an interrupted tail to end cleanly", err)
			}
			if diff := cmp.Diff(ids(tt.want), ids(parseEvents(t, out))); diff != "" {
				t.Errorf("event ids (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTailCount checks that --count ends tail by itself after that many events, in log order.
func TestTailCount(t *testing.T) {
	t.Parallel()
	s, ca, stored := serveTwo(t)
	for _, tt := range []struct {
		name  string
		count int
	}{
		{name: "one", count: 1},
		{name: "two", count: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, err := runCLI(ctx, s, ca, readerToken, "tail", "--json", "--from", "all", "--count", strconv.Itoa(tt.count))
			if err != nil || ctx.Err() != nil {
				t.Fatalf("got %v (context %v), want tail to end by itself", err, ctx.Err())
			}
			if diff := cmp.Diff(ids(stored[:tt.count]), ids(parseEvents(t, out))); diff != "" {
				t.Errorf("event ids (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTailPretty checks the readable output: an envelope line (provider, type, id, source) and
// the typed payload, or with --raw the JSON the provider sent.
func TestTailPretty(t *testing.T) {
	t.Parallel()
	s, ca, stored := serveTwo(t)
	typed := func(ev *hookstreamv1.Event) string {
		b, _ := protojson.MarshalOptions{UseProtoNames: true}.Marshal(ev.GetMvmnt())
		var buf bytes.Buffer
		_ = json.Compact(&buf, b)
		return buf.String()
	}
	raw := func(ev *hookstreamv1.Event) string {
		var buf bytes.Buffer
		_ = json.Compact(&buf, ev.GetRaw())
		return buf.String()
	}
	for _, tt := range []struct {
		name        string
		args        []string
		wantPayload func(*hookstreamv1.Event) string
	}{
		{name: "typed", args: nil, wantPayload: typed},
		{name: "raw", args: []string{"--raw"}, wantPayload: raw},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := runCLI(context.Background(), s, ca, readerToken, append([]string{"tail", "--from", "all", "--count", "2"}, tt.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 4 {
				t.Fatalf("got %d lines %q, want 2 per event", len(lines), out)
			}
			for i, ev := range stored {
				head := strings.Fields(lines[2*i])
				want := []string{strings.ToLower(strings.TrimPrefix(ev.GetProvider().String(), "PROVIDER_")), ev.GetType(), ev.GetId(), ev.GetSource()}
				if len(head) != 5 || !cmp.Equal(head[1:], want) {
					t.Errorf("got envelope line %q, want time then %q", lines[2*i], want)
				}
				if _, err := time.Parse(time.RFC3339Nano, head[0]); err != nil {
					t.Errorf("got time %q, want RFC 3339", head[0])
				}
				if i == 0 || tt.name == "raw" {
					if got := strings.TrimSpace(lines[2*i+1]); got != tt.wantPayload(ev) {
						t.Errorf("got payload %s, want %s", got, tt.wantPayload(ev))
					}
				}
			}
		})
	}
}

// TestTailGroup consumes with --group and checks the events were acked: a second run of the
// group gets nothing within a few seconds, though a stream's unacked events are redelivered
// within a second of its end. Another group still gets every event.
func TestTailGroup(t *testing.T) {
	t.Parallel()
	s, ca, stored := serveTwo(t)
	out, err := runCLI(context.Background(), s, ca, consumerToken, "tail", "--json", "--group", "g1", "--from", "all", "--count", "2")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ids(stored), ids(parseEvents(t, out))); diff != "" {
		t.Fatalf("first run, event ids (-want +got):\n%s", diff)
	}
	for _, tt := range []struct {
		name, group string
		want        []*hookstreamv1.Event
	}{
		{name: "same_group_acked", group: "g1", want: nil},
		{name: "other_group", group: "g2", want: stored},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := runFor(3*time.Second, s, ca, consumerToken, "tail", "--json", "--group", tt.group, "--from", "all")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(ids(tt.want), ids(parseEvents(t, out))); diff != "" {
				t.Errorf("event ids (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTailRefused checks the failures: a wrong token (Unauthenticated, exit 1), a reader
// without the consume permission using --group (PermissionDenied, exit 1) and bad flags (exit 2).
func TestTailRefused(t *testing.T) {
	t.Parallel()
	s, ca := serveSecured(t)
	for _, tt := range []struct {
		name     string
		token    string
		args     []string
		wantCode codes.Code
		wantExit int
	}{
		{name: "wrong_token", token: "not-" + readerToken, args: nil, wantCode: codes.Unauthenticated, wantExit: 1},
		{name: "group_without_consume", token: readerToken, args: []string{"--group", "g"}, wantCode: codes.PermissionDenied, wantExit: 1},
		{name: "bad_from", token: readerToken, args: []string{"--from", "yesterday"}, wantCode: codes.Unknown, wantExit: 2},
		{name: "unknown_provider", token: readerToken, args: []string{"--provider", "stripe"}, wantCode: codes.Unknown, wantExit: 1},
		{name: "json_and_raw", token: readerToken, args: []string{"--json", "--raw"}, wantCode: codes.Unknown, wantExit: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := runCLI(ctx, s, ca, tt.token, append([]string{"tail"}, tt.args...)...)
			if status.Code(err) != tt.wantCode || cli.ExitCode(err) != tt.wantExit {
				t.Errorf("got %v (exit %d), want %v and exit %d", err, cli.ExitCode(err), tt.wantCode, tt.wantExit)
			}
			if tt.wantExit == 2 && !errors.Is(err, config.ErrInvalid) {
				t.Errorf("got %v, want config.ErrInvalid", err)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("got a multi-line error %q, want one line", err)
			}
		})
	}
}

// TestTailDraining stops the daemon under a running tail, with and without --group: tail says
// so and ends cleanly instead of waiting forever or failing.
func TestTailDraining(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		token string
		args  []string
	}{
		{name: "tail", token: readerToken, args: nil},
		{name: "group", token: consumerToken, args: []string{"--group", "drained"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, ca, stop := serveStoppable(t)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			done := make(chan error, 1)
			go func() {
				args := append([]string{"tail", "--json", "--from", "all", "--server", s.GRPCAddr().String(), "--ca-file", ca.File}, tt.args...)
				done <- cli.Run(ctx, args, &stdout, &stderr, []string{"HOOKSTREAM_TOKEN=" + tt.token})
			}()
			time.Sleep(time.Second) // the stored event is printed
			stop()
			if err := <-done; err != nil || ctx.Err() != nil {
				t.Fatalf("got %v (context %v), want tail to end cleanly when the server drains", err, ctx.Err())
			}
			if got := len(parseEvents(t, stdout.String())); got != 1 {
				t.Errorf("got %d events, want the stored one", got)
			}
			if !strings.Contains(stderr.String(), "run again") {
				t.Errorf("got stderr %q, want a note that the server ended the stream", stderr.String())
			}
		})
	}
}
