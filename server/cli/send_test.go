package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/daemon"
	"github.com/hookstream/hookstream/server/samples"
)

// devDaemon is a running `serve --dev` and the environment whose client config it wrote.
type devDaemon struct {
	environ    []string
	events     hookstreamv1.EventServiceClient
	quarantine hookstreamv1.QuarantineServiceClient
}

// startDevDaemon runs serve --dev (see startDev) and connects to its internal API at the
// address of the client config it wrote, as the client commands do.
func startDevDaemon(t *testing.T) devDaemon {
	t.Helper()
	home := t.TempDir()
	environ := devEnviron(home)
	startDev(t, environ, t.TempDir())
	k := koanf.New(".")
	if err := k.Load(file.Provider(filepath.Join(home, "xdg", "hookstream", "client.yaml")), yaml.Parser()); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(k.String("server"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return devDaemon{environ: environ, events: hookstreamv1.NewEventServiceClient(conn), quarantine: hookstreamv1.NewQuarantineServiceClient(conn)}
}

// stored returns the events of provider the daemon stores, oldest first.
func (d devDaemon) stored(t *testing.T, provider hookstreamv1.Provider) []*hookstreamv1.Event {
	t.Helper()
	resp, err := d.events.ListEvents(context.Background(), &hookstreamv1.ListEventsRequest{
		Filter: &hookstreamv1.EventFilter{Providers: []hookstreamv1.Provider{provider}}, PageSize: 1000,
	})
	if err != nil {
		t.Fatalf("list stored events: %v", err)
	}
	return resp.GetEvents()
}

// entries returns the quarantine entries of provider.
func (d devDaemon) entries(t *testing.T, provider hookstreamv1.Provider) []*hookstreamv1.QuarantineEntry {
	t.Helper()
	resp, err := d.quarantine.ListEntries(context.Background(), &hookstreamv1.ListEntriesRequest{Provider: provider, PageSize: 1000})
	if err != nil {
		t.Fatalf("list quarantine entries: %v", err)
	}
	return resp.GetEntries()
}

// providerOf is the Provider enum of a provider name of send.
var providerOf = map[string]hookstreamv1.Provider{
	samples.MoveAPI:  hookstreamv1.Provider_PROVIDER_MOVEAPI,
	samples.Movement: hookstreamv1.Provider_PROVIDER_MOVEMENT,
	samples.MVMNT:    hookstreamv1.Provider_PROVIDER_MVMNT,
	samples.Listener: hookstreamv1.Provider_PROVIDER_LISTENER,
}

// lines splits output into its lines.
func lines(out string) []string { return strings.Split(strings.TrimSuffix(out, "\n"), "\n") }

// startDaemon runs a daemon serving cfg and returns it with a stop that shuts it down (as SIGTERM
// does) and waits for it; it stops with the test too.
func startDaemon(t *testing.T, cfg config.Config) (*daemon.Server, func()) {
	t.Helper()
	s, err := daemon.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { s.Run(ctx); close(stopped) }()
	stop := func() { cancel(); <-stopped }
	t.Cleanup(stop)
	return s, stop
}

// TestSendEveryType runs `send PROVIDER` without a type after serve --dev, with nothing but the
// client config serve --dev wrote: every provider's every event type is stored, once, typed,
// as its own type; one line per delivery says so.
func TestSendEveryType(t *testing.T) {
	t.Parallel()
	d := startDevDaemon(t)
	for _, provider := range samples.Providers() {
		t.Run(provider, func(t *testing.T) {
			t.Parallel()
			types, err := samples.Types(provider)
			if err != nil {
				t.Fatal(err)
			}
			out, err := run(t, d.environ, "send", provider)
			if err != nil {
				t.Fatalf("send %s: got error %v, want none:\n%s", provider, err, out)
			}
			want := "200 stored "
			got := lines(out)
			if len(got) != len(types) {
				t.Errorf("got %d lines, want one per type (%d):\n%s", len(got), len(types), out)
			}
			for i, l := range got {
				if i < len(types) && !strings.HasPrefix(l, provider+" "+types[i]+" "+want) {
					t.Errorf("line %d: got %q, want %q then %q", i, l, provider+" "+types[i], want)
				}
			}
			var storedTypes []string
			for _, e := range d.stored(t, providerOf[provider]) {
				storedTypes = append(storedTypes, e.GetType())
				if e.GetPayload() == nil {
					t.Errorf("event %s (%s): got no typed payload", e.GetId(), e.GetType())
				}
			}
			slices.Sort(storedTypes)
			if diff := cmp.Diff(types, storedTypes); diff != "" {
				t.Errorf("stored types (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSendDup checks that --dup sends each delivery twice with the same dedup key: the second
// answer says duplicate, and the event is stored once.
func TestSendDup(t *testing.T) {
	t.Parallel()
	d := startDevDaemon(t)
	for _, tt := range []struct {
		provider, typ string
		want          []string // what each answer says
	}{
		{provider: samples.MoveAPI, typ: "job.state.completed", want: []string{"200 stored", "200 duplicate"}},
		{provider: samples.Movement, typ: "call.finished", want: []string{"200 stored", "200 duplicate"}},
		{provider: samples.MVMNT, typ: "SHIPMENT_DELIVERED", want: []string{"200 stored", "200 duplicate"}},
		{provider: samples.Listener, typ: "incident.created", want: []string{"200 stored", "200 duplicate"}},
	} {
		t.Run(tt.provider, func(t *testing.T) {
			t.Parallel()
			out, err := run(t, d.environ, "send", tt.provider, tt.typ, "--dup")
			if err != nil {
				t.Fatalf("got error %v, want none:\n%s", err, out)
			}
			got := lines(out)
			if len(got) != len(tt.want) {
				t.Fatalf("got %q, want %d lines", out, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(got[i], tt.provider+" "+tt.typ+" "+w) {
					t.Errorf("answer %d: got %q, want %q", i, got[i], w)
				}
			}
			if n := len(d.stored(t, providerOf[tt.provider])); n != 1 {
				t.Errorf("stored: got %d events, want 1", n)
			}
		})
	}
}

// TestSendCount checks that --count N stores N distinct events, paced by --rate.
func TestSendCount(t *testing.T) {
	t.Parallel()
	d := startDevDaemon(t)
	const n, perSecond = 12, 40
	began := time.Now()
	out, err := run(t, d.environ, "send", "mvmnt", "shipment_delivered", "--count", fmt.Sprint(n), "--rate", fmt.Sprint(perSecond))
	if err != nil {
		t.Fatalf("got error %v, want none:\n%s", err, out)
	}
	if min := time.Duration(n-1) * time.Second / perSecond; time.Since(began) < min {
		t.Errorf("%d deliveries at --rate %d took %v, want at least %v", n, perSecond, time.Since(began), min)
	}
	if got := strings.Count(out, " 200 stored "); got != n {
		t.Errorf("got %d stored answers, want %d:\n%s", got, n, out)
	}
	events := d.stored(t, hookstreamv1.Provider_PROVIDER_MVMNT)
	ids, keys := map[string]bool{}, map[string]bool{}
	for _, e := range events {
		ids[e.GetId()], keys[e.GetDedupKey()] = true, true
		if e.GetType() != "SHIPMENT_DELIVERED" || e.GetMvmnt().GetShipmentDelivered() == nil {
			t.Errorf("event %s: got type %q, payload %v, want a typed SHIPMENT_DELIVERED", e.GetId(), e.GetType(), e.GetPayload())
		}
	}
	if len(events) != n || len(ids) != n || len(keys) != n {
		t.Errorf("got %d events, %d ids, %d dedup keys, want %d of each", len(events), len(ids), len(keys), n)
	}
}

// TestSendFile sends bodies of one's own that hookstream cannot store, from a file and from
// stdin: each answer says what became of it, in one line, the exit status is 1, and what is
// stored (nothing) and quarantined is checked through the internal API.
func TestSendFile(t *testing.T) {
	t.Parallel()
	d := startDevDaemon(t)
	write := tempWriter(t)
	tests := []struct {
		name, provider, body string
		stdin                bool
		want                 string // the answer's start, after the label
		quarantined          int
	}{
		{name: "bad_timestamp", provider: samples.MoveAPI, body: `{"detail":{"job_id":"x"},"event_name":"job.state.started","timestamp":"yesterday"}`, want: "400 quarantined", quarantined: 1},
		{name: "not_json", provider: samples.Movement, body: `{"topic": "call", "event": `, stdin: true, want: "400 quarantined", quarantined: 1},
		{name: "invalid_item", provider: samples.MVMNT, body: `{"sentAt":"2025-01-15T14:30:00Z","events":[{"event":"SHIPMENT_DELIVERED","timestamp":"2025-01-15T14:30:00Z","data":{"id":"not-a-uuid"}}]}`, want: "200 quarantined as ", quarantined: 1},
		{name: "not_an_object", provider: samples.Listener, body: `["<script>alert(1)</script>"]`, stdin: true, want: "400 quarantined", quarantined: 1},
		{name: "over_the_limit", provider: samples.MVMNT, body: `{"sentAt":"2025-01-15T14:30:00Z","events":[],"pad":"` + strings.Repeat("A", int(config.Default().HTTP.BodyLimit)) + `"}`, want: "413 refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, stdin := write(tt.name+".json", tt.body), ""
			if tt.stdin {
				path, stdin = "-", tt.body
			}
			before := len(d.entries(t, providerOf[tt.provider]))
			out, err := runStdin(t, stdin, d.environ, "send", tt.provider, "--file", path)
			if !errors.Is(err, errNotStored) || ExitCode(err) != 1 {
				t.Errorf("got error %v (exit %d), want %v (exit 1)", err, ExitCode(err), errNotStored)
			}
			if got := lines(out); len(got) != 1 || !strings.HasPrefix(got[0], tt.provider+" "+path+" "+tt.want) {
				t.Errorf("got %q, want one line starting %q", out, tt.provider+" "+path+" "+tt.want)
			}
			if n := len(d.entries(t, providerOf[tt.provider])) - before; n != tt.quarantined {
				t.Errorf("quarantined: got %d new entries, want %d", n, tt.quarantined)
			}
		})
	}
	for _, p := range samples.Providers() {
		if n := len(d.stored(t, providerOf[p])); n != 0 {
			t.Errorf("%s: got %d stored events, want none", p, n)
		}
	}
}

// TestSendErrors checks that what send cannot do is one line, a non-zero exit, and no secret.
func TestSendErrors(t *testing.T) {
	t.Parallel()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nothing := "http://" + closed.Addr().String()
	closed.Close()
	noConfig := []string{"HOME=" + t.TempDir()}
	tests := []struct {
		name     string
		args     []string
		environ  []string
		wantCode int
	}{
		{name: "unknown_provider", args: []string{"send", "stripe"}, wantCode: 2},
		{name: "unknown_type", args: []string{"send", "mvmnt", "SHIPMENT_TELEPORTED"}, wantCode: 2},
		{name: "unknown_provider_list", args: []string{"send", "--list", "stripe"}, wantCode: 2},
		{name: "no_provider", args: []string{"send"}, wantCode: 2},
		{name: "file_and_type", args: []string{"send", "mvmnt", "SHIPMENT_DELIVERED", "--file", "x.json"}, wantCode: 2},
		{name: "zero_count", args: []string{"send", "mvmnt", "--count", "0"}, wantCode: 2},
		{name: "no_credentials", args: []string{"send", "mvmnt"}, environ: noConfig, wantCode: 2},
		{name: "empty_secret_variable", args: []string{"send", "mvmnt", "--secret-env", "NOT_SET"}, environ: noConfig, wantCode: 2},
		{name: "listener_without_id", args: []string{"send", "listener", "--secret-env", "LISTENER_TOKEN"}, environ: append(noConfig, "LISTENER_TOKEN="+secrets[7]), wantCode: 2},
		{name: "bad_url", args: []string{"send", "mvmnt", "--url", "ftp://example.com"}, environ: secretEnviron(noConfig...), wantCode: 2},
		{name: "door_not_listening", args: []string{"send", "movement", "--url", nothing}, environ: secretEnviron(noConfig...), wantCode: 1},
		{name: "missing_file", args: []string{"send", "mvmnt", "--file", filepath.Join(t.TempDir(), "none.json")}, environ: secretEnviron(noConfig...), wantCode: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := run(t, tt.environ, tt.args...)
			if err == nil {
				t.Fatalf("%v: got no error, want one", tt.args)
			}
			if got := ExitCode(err); got != tt.wantCode {
				t.Errorf("%v: got exit code %d (%v), want %d", tt.args, got, err, tt.wantCode)
			}
			if strings.Contains(err.Error(), "\n") || out != "" {
				t.Errorf("%v: got error %q and output %q, want one line and nothing printed", tt.args, err, out)
			}
			assertNoSecret(t, "error", err.Error())
		})
	}
}

// TestSendCredentials sends to a daemon configured without serve --dev, with the credentials
// from each place send takes them: the variables serve reads, a variable named by --secret-env,
// a file, and for a listener its Bearer token and an HMAC of the body. Wrong credentials are a
// 401 line and exit 1.
func TestSendCredentials(t *testing.T) {
	t.Parallel()
	const listener = "4a3f1e2d-9c8b-4a7f-8e6d-5c4b3a291807"
	cfg := config.Default()
	cfg.HTTP.Addr, cfg.GRPC.Addr, cfg.API.Addr, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	cfg.Providers.MoveAPI.Secrets = []string{secrets[0]}
	cfg.Providers.Movement.Tokens = []string{secrets[1]}
	cfg.Providers.MVMNT.Tokens = []string{secrets[2]}
	cfg.Listeners = map[string]config.Listener{listener: {DefaultType: "notification", Tokens: []string{secrets[7]},
		HMAC: config.ListenerHMAC{Header: "X-Hub-Signature-256", Prefix: "sha256=", Algorithm: "sha256", Encoding: "hex", Secrets: []string{secrets[8]}}}}
	s, _ := startDaemon(t, cfg)
	url := "http://" + s.HTTPAddr().String()
	tokenFile := tempWriter(t)("token", secrets[2]+"\n")
	noConfig := "HOME=" + t.TempDir()
	tests := []struct {
		name    string
		args    []string
		environ []string
		want    string // the answer, after the label
	}{
		{name: "serve_variables_moveapi", args: []string{"send", "moveapi", "job.state.started"}, environ: secretEnviron(noConfig), want: "200 stored"},
		{name: "serve_variables_movement_query", args: []string{"send", "movement", "email.sent"}, environ: secretEnviron(noConfig), want: "200 stored"},
		{name: "movement_bearer", args: []string{"send", "movement", "email.sent", "--bearer"}, environ: secretEnviron(noConfig), want: "200 stored"},
		{name: "secret_env", args: []string{"send", "mvmnt", "QUOTE_WON", "--secret-env", "MY_TOKEN"}, environ: []string{noConfig, "MY_TOKEN=" + secrets[2]}, want: "200 stored"},
		{name: "secret_file", args: []string{"send", "mvmnt", "QUOTE_WON", "--secret-file", tokenFile}, environ: []string{noConfig}, want: "200 stored"},
		{name: "webhook_url_env", args: []string{"send", "mvmnt", "QUOTE_LOST"}, environ: append(secretEnviron(noConfig), webhookURLEnv+"="+url), want: "200 stored"},
		{name: "listener_hmac", args: []string{"send", "listener", "--listener", listener, "--secret-env", "L_TOKEN", "--hmac-header", "X-Hub-Signature-256", "--hmac-prefix", "sha256=", "--hmac-secret-env", "L_HMAC"},
			environ: []string{noConfig, "L_TOKEN=" + secrets[7], "L_HMAC=" + secrets[8]}, want: "200 stored"},
		{name: "listener_without_hmac", args: []string{"send", "listener", "--listener", listener, "--secret-env", "L_TOKEN"}, environ: []string{noConfig, "L_TOKEN=" + secrets[7]}, want: "401 refused"},
		{name: "wrong_token", args: []string{"send", "mvmnt", "QUOTE_WON", "--secret-env", "MY_TOKEN"}, environ: []string{noConfig, "MY_TOKEN=not-" + secrets[2]}, want: "401 refused"},
		{name: "wrong_svix_secret", args: []string{"send", "moveapi", "job.state.started", "--secret-env", "MY_SECRET"}, environ: []string{noConfig, "MY_SECRET=whsec_" + "c2VjcmV0LW9mLWFub3RoZXItZW5kcG9pbnQ="}, want: "401 refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := tt.args
			if tt.name != "webhook_url_env" {
				args = append(args, "--url", url)
			}
			out, err := run(t, tt.environ, args...)
			if strings.HasPrefix(tt.want, "200") != (err == nil) {
				t.Errorf("got error %v, want one only for a refused delivery", err)
			}
			if got := lines(out); len(got) != 1 || !strings.Contains(got[0], " "+tt.want) {
				t.Errorf("got %q, want one line saying %q", out, tt.want)
			}
			assertNoSecret(t, "output", out)
		})
	}
}

// TestSendVariablesLeaveServeAlone checks that send's variables, which a shell may hold beside
// serve's, are not refused by serve's configuration as unknown HOOKSTREAM_* variables.
func TestSendVariablesLeaveServeAlone(t *testing.T) {
	t.Parallel()
	environ := []string{webhookURLEnv + "=http://127.0.0.1:8080", devCredentialsEnv + "=/tmp/dev-credentials.yaml"}
	if out, err := run(t, environ, "config", "check"); err != nil {
		t.Errorf("config check with %v: got error %v, want none:\n%s", environ, err, out)
	}
}
