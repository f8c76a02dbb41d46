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

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/cli"
	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/daemon"
	"github.com/hookstream/hookstream/server/internal/testca"
)

// invalidDelivery is an MVMNT delivery that breaks the schema (an empty "events" array): it is
// quarantined whole with the violation "delivery.events".
const invalidDelivery = `{"sentAt":"2025-01-15T14:30:00Z","events":[]}`

// malformedMovement and otherMalformed are Movement bodies that are not JSON: each is
// quarantined as malformed (two entries: their bytes differ).
const (
	malformedMovement = `{"event": "call.finished", `
	otherMalformed    = `not json at all`
)

// serveQuarantined runs serveSecured's daemon with two entries quarantined through the public
// door with valid tokens, and returns their ids: the invalid MVMNT delivery, then the two
// malformed Movement bodies.
func serveQuarantined(t *testing.T) (*daemon.Server, *testca.CA, []string) {
	t.Helper()
	s, ca := serveSecured(t)
	post := func(path, body string, header ...string) {
		req, _ := http.NewRequest("POST", "http://"+s.HTTPAddr().String()+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("post %s: got status %d, want 400 (quarantined)", path, resp.StatusCode)
		}
	}
	post("/webhooks/mvmnt", invalidDelivery, "x-api-key", "mvmnt-key")
	post("/webhooks/movement?token=movement-secret", malformedMovement)
	post("/webhooks/movement?token=movement-secret", otherMalformed)
	ids := entryIDs(listJSON(t, s, ca))
	if len(ids) != 3 {
		t.Fatalf("got %d quarantined entries, want 3", len(ids))
	}
	return s, ca, ids
}

func entryIDs(entries []*hookstreamv1.QuarantineEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.GetId())
	}
	return out
}

// runQuarantine runs `hookstream quarantine args...` against s with token, returning stdout
// and stderr.
func runQuarantine(s *daemon.Server, ca *testca.CA, token string, args ...string) (string, string, error) {
	var stdout, stderr bytes.Buffer
	args = append(append([]string{"quarantine"}, args...), "--server", s.GRPCAddr().String(), "--ca-file", ca.File)
	err := cli.Run(context.Background(), args, &stdout, &stderr, []string{"HOOKSTREAM_TOKEN=" + token})
	return stdout.String(), stderr.String(), err
}

// listJSON returns the entries `quarantine list --json` prints.
func listJSON(t *testing.T, s *daemon.Server, ca *testca.CA, args ...string) []*hookstreamv1.QuarantineEntry {
	t.Helper()
	out, _, err := runQuarantine(s, ca, consumerToken, append([]string{"list", "--json"}, args...)...)
	if err != nil {
		t.Fatalf("list --json: %v", err)
	}
	var entries []*hookstreamv1.QuarantineEntry
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		e := &hookstreamv1.QuarantineEntry{}
		if err := protojson.Unmarshal([]byte(line), e); err != nil {
			t.Fatalf("got line %q, want a QuarantineEntry: %v", line, err)
		}
		entries = append(entries, e)
	}
	return entries
}

// TestQuarantineRead lists and shows the entries of a real daemon, and checks that a principal
// without the admin permission is refused by every subcommand (PermissionDenied, exit 1) and
// changes nothing.
func TestQuarantineRead(t *testing.T) {
	t.Parallel()
	s, ca, ids := serveQuarantined(t)
	invalid, malformed := ids[0], ids[1]
	t.Cleanup(func() {
		if got := entryIDs(listJSON(t, s, ca)); !cmp.Equal(got, ids) {
			t.Errorf("entries after the refused calls: got %v, want %v", got, ids)
		}
	})
	for _, tt := range []struct {
		name     string
		token    string
		args     []string
		want     func(t *testing.T, stdout string)
		wantCode codes.Code
	}{
		{name: "list_lines", token: consumerToken, args: []string{"list"}, want: func(t *testing.T, out string) {
			var got [][]string
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				f := strings.Split(line, "\t")
				if len(f) != 6 {
					t.Fatalf("got line %q, want 6 tab-separated fields", line)
				}
				if _, err := time.Parse(time.RFC3339, f[1]); err != nil {
					t.Errorf("got quarantined time %q, want RFC 3339", f[1])
				}
				// The first violation's field, or the error, opens the fourth field.
				got = append(got, []string{f[0], f[2], f[3], strings.SplitN(f[4], ":", 2)[0], f[5]})
			}
			want := [][]string{
				{invalid, "mvmnt", "invalid", "delivery.events", strconv.Itoa(len(invalidDelivery)) + "B"},
				{malformed, "movement", "malformed", "body", strconv.Itoa(len(malformedMovement)) + "B"},
				{ids[2], "movement", "malformed", "body", strconv.Itoa(len(otherMalformed)) + "B"},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("list lines (-want +got):\n%s", diff)
			}
		}},
		{name: "list_json", token: consumerToken, args: []string{"list", "--json"}, want: wantIDs(ids...)},
		{name: "list_provider", token: consumerToken, args: []string{"list", "--json", "--provider", "movement"}, want: wantIDs(malformed, ids[2])},
		{name: "list_reason", token: consumerToken, args: []string{"list", "--json", "--reason", "invalid"}, want: wantIDs(invalid)},
		{name: "list_provider_and_reason", token: consumerToken, args: []string{"list", "--json", "--provider", "mvmnt", "--reason", "malformed"}, want: wantIDs()},
		{name: "show_json_body", token: consumerToken, args: []string{"show", invalid}, want: func(t *testing.T, out string) {
			var got struct {
				ID         string               `json:"id"`
				Raw        map[string]any       `json:"raw"`
				Violations []*map[string]string `json:"violations"`
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("got %q, want the entry with its body decoded: %v", out, err)
			}
			if got.ID != invalid || got.Raw["sentAt"] != "2025-01-15T14:30:00Z" || len(got.Violations) != 1 || (*got.Violations[0])["field"] != "delivery.events" {
				t.Errorf("got %s, want entry %s with its body and its violation", out, invalid)
			}
			if !strings.Contains(out, "\n  \"") {
				t.Errorf("got %q, want indented JSON", out)
			}
		}},
		{name: "show_non_json_body", token: consumerToken, args: []string{"show", ids[2]}, want: func(t *testing.T, out string) {
			var got struct {
				Raw []byte `json:"raw"` // base64, as protojson writes bytes
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil || string(got.Raw) != otherMalformed {
				t.Errorf("got %s (%v), want the body base64-encoded", out, err)
			}
		}},
		{name: "show_unknown", token: consumerToken, args: []string{"show", "01a2f000-0000-7000-8000-0000000000ff"}, wantCode: codes.NotFound},
		{name: "list_without_admin", token: readerToken, args: []string{"list"}, wantCode: codes.PermissionDenied},
		{name: "show_without_admin", token: readerToken, args: []string{"show", invalid}, wantCode: codes.PermissionDenied},
		{name: "redrive_without_admin", token: readerToken, args: []string{"redrive", invalid}, wantCode: codes.PermissionDenied},
		{name: "delete_without_admin", token: readerToken, args: []string{"delete", invalid}, wantCode: codes.PermissionDenied},
		{name: "purge_without_admin", token: readerToken, args: []string{"purge", "--all"}, wantCode: codes.PermissionDenied},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, _, err := runQuarantine(s, ca, tt.token, tt.args...)
			if status.Code(err) != tt.wantCode {
				t.Fatalf("got %v, want %v", err, tt.wantCode)
			}
			if tt.wantCode != codes.OK {
				if cli.ExitCode(err) != 1 || strings.Contains(err.Error(), "\n") {
					t.Errorf("got %q (exit %d), want one line and exit 1", err, cli.ExitCode(err))
				}
				return
			}
			tt.want(t, out)
		})
	}
}

// wantIDs checks that stdout holds the protojson entries ids, in order.
func wantIDs(ids ...string) func(t *testing.T, stdout string) {
	return func(t *testing.T, stdout string) {
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
			if line == "" {
				continue
			}
			e := &hookstreamv1.QuarantineEntry{}
			if err := protojson.Unmarshal([]byte(line), e); err != nil {
				t.Fatalf("got line %q, want a QuarantineEntry: %v", line, err)
			}
			got = append(got, e.GetId())
		}
		if diff := cmp.Diff(ids, got); diff != "" {
			t.Errorf("listed ids (-want +got):\n%s", diff)
		}
	}
}

// TestQuarantineChange redrives, deletes and purges the entries of a real daemon and checks,
// after each step, what the quarantine still holds. The steps share the daemon's quarantine and
// run in order (not in parallel): each starts from what the one before left.
func TestQuarantineChange(t *testing.T) {
	t.Parallel()
	s, ca, ids := serveQuarantined(t)
	invalid, malformed, other := ids[0], ids[1], ids[2]
	for _, step := range []struct {
		name       string
		args       []string
		wantExit   int
		wantOut    string // printed on stdout
		wantStderr string // printed on stderr
		wantLeft   []string
	}{
		{name: "redrive_still_invalid", args: []string{"redrive", invalid}, wantExit: 1, wantStderr: "delivery.events", wantLeft: ids},
		{name: "delete", args: []string{"delete", malformed}, wantOut: "deleted " + malformed + "\n", wantLeft: []string{invalid, other}},
		{name: "delete_again", args: []string{"delete", malformed}, wantExit: 1, wantLeft: []string{invalid, other}},
		{name: "purge_unfiltered", args: []string{"purge"}, wantExit: 2, wantLeft: []string{invalid, other}},
		{name: "purge_all_with_filter", args: []string{"purge", "--all", "--provider", "mvmnt"}, wantExit: 2, wantLeft: []string{invalid, other}},
		{name: "purge_before_none", args: []string{"purge", "--before", "2000-01-01T00:00:00Z"}, wantOut: "purged 0 entries\n", wantLeft: []string{invalid, other}},
		{name: "purge_provider", args: []string{"purge", "--provider", "movement"}, wantOut: "purged 1 entries\n", wantLeft: []string{invalid}},
		{name: "purge_all", args: []string{"purge", "--all"}, wantOut: "purged 1 entries\n", wantLeft: nil},
	} {
		t.Run(step.name, func(t *testing.T) {
			out, stderr, err := runQuarantine(s, ca, consumerToken, step.args...)
			if got := cli.ExitCode(err); got != step.wantExit {
				t.Errorf("got %v (exit %d), want exit %d", err, got, step.wantExit)
			}
			if step.wantExit == 2 && !errors.Is(err, config.ErrInvalid) {
				t.Errorf("got %v, want config.ErrInvalid", err)
			}
			if step.wantExit == 1 && status.Code(err) == codes.OK {
				t.Errorf("got %v, want a status from the server", err)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("got a multi-line error %q, want one line", err)
			}
			if step.wantExit == 0 && out != step.wantOut {
				t.Errorf("got stdout %q, want %q", out, step.wantOut)
			}
			if !strings.Contains(stderr+errString(err), step.wantStderr) {
				t.Errorf("got stderr %q and error %v, want %q named", stderr, err, step.wantStderr)
			}
			if diff := cmp.Diff(step.wantLeft, entryIDs(listJSON(t, s, ca))); diff != "" {
				t.Errorf("entries left (-want +got):\n%s", diff)
			}
		})
	}
}

// TestQuarantineUsage checks that flags and arguments that cannot be used are refused before
// any call: one line, config.ErrInvalid, exit 2.
func TestQuarantineUsage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		args []string
	}{
		{name: "purge_unfiltered", args: []string{"purge"}},
		{name: "purge_all_with_reason", args: []string{"purge", "--all", "--reason", "invalid"}},
		{name: "purge_bad_before", args: []string{"purge", "--before", "yesterday"}},
		{name: "purge_unknown_reason", args: []string{"purge", "--reason", "lost"}},
		{name: "list_unknown_provider", args: []string{"list", "--provider", "stripe"}},
		{name: "show_without_id", args: []string{"show"}},
		{name: "redrive_two_ids", args: []string{"redrive", "a", "b"}},
		{name: "delete_without_id", args: []string{"delete"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			// No daemon listens there: a refusal must come before any call.
			args := append(append([]string{"quarantine"}, tt.args...), "--server", "127.0.0.1:1")
			err := cli.Run(context.Background(), args, &stdout, &stderr, nil)
			if !errors.Is(err, config.ErrInvalid) || cli.ExitCode(err) != 2 || strings.Contains(err.Error(), "\n") {
				t.Errorf("got %v (exit %d), want one line wrapping config.ErrInvalid, exit 2", err, cli.ExitCode(err))
			}
		})
	}
}
