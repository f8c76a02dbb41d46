package cli_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/cli"
	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/daemon"
	"github.com/hookstream/hookstream/server/internal/testca"
)

// showGroup returns the group `groups show --json` prints.
func showGroup(t *testing.T, s *daemon.Server, ca *testca.CA, name string) *hookstreamv1.Group {
	t.Helper()
	out, err := runCLI(context.Background(), s, ca, consumerToken, "groups", "show", name, "--json")
	if err != nil {
		t.Fatalf("groups show %s: %v", name, err)
	}
	g := &hookstreamv1.Group{}
	if err := protojson.Unmarshal([]byte(out), g); err != nil {
		t.Fatalf("got %q, want a Group: %v", out, err)
	}
	return g
}

// TestGroupsCommands runs every groups subcommand, one after the other, against a real daemon
// holding two events and a group that has acknowledged both: resets to each kind of position
// set what is pending and what tail --group receives next, a pause holds the events back until
// resume, and delete removes the group.
func TestGroupsCommands(t *testing.T) {
	t.Parallel()
	s, ca, stored := serveTwo(t)
	if _, err := runCLI(context.Background(), s, ca, consumerToken, "tail", "--json", "--group", "g", "--from", "all", "--count", "2"); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := runCLI(context.Background(), s, ca, consumerToken, append([]string{"groups"}, args...)...)
		if err != nil {
			t.Fatalf("groups %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	// consume runs tail --group g until it printed count events (0: for d), or for at most d.
	consume := func(d time.Duration, count int) []string {
		t.Helper()
		args := []string{"tail", "--json", "--group", "g"}
		if count > 0 {
			args = append(args, "--count", fmt.Sprint(count))
		}
		out, err := runFor(d, s, ca, consumerToken, args...)
		if err != nil {
			t.Fatalf("tail --group g: %v", err)
		}
		return ids(parseEvents(t, out))
	}

	for _, tt := range []struct {
		name, to string
		want     []*hookstreamv1.Event // pending after the reset, and what tail then gets
	}{
		{name: "all", to: "all", want: stored},
		{name: "sequence", to: fmt.Sprint(stored[1].GetSequence()), want: stored[1:]},
		{name: "time", to: stored[1].GetReceivedAt().AsTime().Format(time.RFC3339Nano), want: stored[1:]},
		{name: "new", to: "new", want: nil},
	} {
		t.Run("reset_to_"+tt.name, func(t *testing.T) {
			out := run("reset", "g", "--to", tt.to)
			if want := fmt.Sprintf("reset g to %s: %d pending\n", tt.to, len(tt.want)); out != want {
				t.Errorf("reset printed %q, want %q", out, want)
			}
			if got := showGroup(t, s, ca, "g").GetPendingEvents(); got != uint64(len(tt.want)) {
				t.Errorf("pending after the reset: got %d, want %d", got, len(tt.want))
			}
			if diff := cmp.Diff(ids(tt.want), consume(time.Duration(max(3, 5*len(tt.want)))*time.Second, len(tt.want))); diff != "" {
				t.Errorf("events after the reset (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("show", func(t *testing.T) {
		run("reset", "g", "--to", "all")
		out := run("show", "g")
		for _, line := range []string{"group:          g", "pending (lag):  2", "in flight:      0", "redeliveries:   0", "dead letters:   0", "paused:         no"} {
			if !strings.Contains(out, line+"\n") {
				t.Errorf("show printed:\n%s\nwant the line %q", out, line)
			}
		}
		if got, want := run("list"), "g\tpending=2\tin_flight=0\tredelivered=0\tdead_letters=0\tpaused=no\n"; got != want {
			t.Errorf("list printed %q, want %q", got, want)
		}
	})

	t.Run("pause_and_resume", func(t *testing.T) {
		until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
		if got, want := run("pause", "g", "--until", until.Format(time.RFC3339)), "paused g until "+until.Format(time.RFC3339)+"\n"; got != want {
			t.Errorf("pause --until printed %q, want %q", got, want)
		}
		if got, want := run("pause", "g"), "paused g until resumed\n"; got != want {
			t.Errorf("pause printed %q, want %q", got, want)
		}
		if g := showGroup(t, s, ca, "g"); !g.GetPaused() || g.GetPausedUntil() != nil {
			t.Errorf("shown paused %v until %v, want paused until resumed", g.GetPaused(), g.GetPausedUntil())
		}
		if got := consume(2*time.Second, 0); len(got) != 0 {
			t.Errorf("tail got %v from the paused group, want nothing", got)
		}
		if got, want := run("resume", "g"), "resumed g: 2 pending\n"; got != want {
			t.Errorf("resume printed %q, want %q", got, want)
		}
		if diff := cmp.Diff(ids(stored), consume(10*time.Second, 2)); diff != "" {
			t.Errorf("events after resume (-want +got):\n%s", diff)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if got := run("delete", "g"); got != "deleted g\n" {
			t.Errorf("delete printed %q, want %q", got, "deleted g\n")
		}
		if got := run("list"); got != "" {
			t.Errorf("list after delete printed %q, want nothing", got)
		}
		for _, args := range [][]string{{"show", "g"}, {"delete", "g"}, {"reset", "g", "--to", "all"}, {"pause", "g"}, {"resume", "g"}} {
			_, err := runCLI(context.Background(), s, ca, consumerToken, append([]string{"groups"}, args...)...)
			if status.Code(err) != codes.NotFound || cli.ExitCode(err) != 1 || strings.Contains(err.Error(), "\n") {
				t.Errorf("groups %s after delete: got %v (exit %d), want one line, NotFound, exit 1", strings.Join(args, " "), err, cli.ExitCode(err))
			}
		}
	})
}

// TestGroupsRefused runs every subcommand as a principal without the admin permission: refused
// with PermissionDenied, one line, exit 1.
func TestGroupsRefused(t *testing.T) {
	t.Parallel()
	s, ca := serveSecured(t)
	for _, args := range [][]string{{"list"}, {"show", "g"}, {"reset", "g", "--to", "all"}, {"pause", "g"}, {"resume", "g"}, {"delete", "g"}} {
		t.Run(args[0], func(t *testing.T) {
			t.Parallel()
			_, err := runCLI(context.Background(), s, ca, readerToken, append([]string{"groups"}, args...)...)
			if status.Code(err) != codes.PermissionDenied || cli.ExitCode(err) != 1 || strings.Contains(err.Error(), "\n") {
				t.Errorf("got %v (exit %d), want one line, PermissionDenied, exit 1", err, cli.ExitCode(err))
			}
		})
	}
}

// TestGroupsUsage checks that arguments and flags that cannot be used are refused before any
// call (one line, config.ErrInvalid, exit 2), and that every subcommand's help has an example.
func TestGroupsUsage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		args []string
	}{
		{name: "show_without_name", args: []string{"show"}},
		{name: "delete_without_name", args: []string{"delete"}},
		{name: "resume_two_names", args: []string{"resume", "a", "b"}},
		{name: "reset_without_to", args: []string{"reset", "g"}},
		{name: "reset_to_yesterday", args: []string{"reset", "g", "--to", "yesterday"}},
		{name: "pause_until_soon", args: []string{"pause", "g", "--until", "soon"}},
		{name: "list_with_a_name", args: []string{"list", "g"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			// No daemon listens there: a refusal must come before any call.
			args := append(append([]string{"groups"}, tt.args...), "--server", "127.0.0.1:1")
			err := cli.Run(context.Background(), args, &stdout, &stderr, nil)
			if !errors.Is(err, config.ErrInvalid) || cli.ExitCode(err) != 2 || strings.Contains(err.Error(), "\n") {
				t.Errorf("got %v (exit %d), want one line wrapping config.ErrInvalid, exit 2", err, cli.ExitCode(err))
			}
		})
	}
	for _, sub := range []string{"list", "show", "reset", "pause", "resume", "delete"} {
		var stdout bytes.Buffer
		if err := cli.Run(context.Background(), []string{"groups", sub, "--help"}, &stdout, &stdout, nil); err != nil {
			t.Fatalf("groups %s --help: %v", sub, err)
		}
		if !strings.Contains(stdout.String(), "Examples:\n  hookstream groups "+sub) {
			t.Errorf("groups %s --help printed:\n%s\nwant an example of it", sub, stdout.String())
		}
	}
}
