package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"

	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/internal/testca"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the output")

const listenerID = "0b6f7c1e-5a4d-4c3b-9a2e-1f0e9d8c7b6a"

// secrets are the values of every secret of the configurations below, in the environment and in
// the files: no output of any command may hold one of them (or a token's digest).
var secrets = []string{
	"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", // Move API (standard base64 after whsec_)
	"movement-secret-value",
	"mvmnt-token-value",
	"nats-listen-token-value",
	"principal-env-token-value",
	"principal-file-token-value",
	"principal-config-token-value",
	"listener-token-value",
	"listener-hmac-secret-value",
	"nats-url-password",
	"client-token-value",
}

// secretEnviron sets every secret variable hookstream reads.
func secretEnviron(extra ...string) []string {
	return append([]string{
		"HOOKSTREAM_PROVIDERS_MOVEAPI_SECRETS=" + secrets[0],
		"HOOKSTREAM_PROVIDERS_MOVEMENT_TOKENS=" + secrets[1],
		"HOOKSTREAM_PROVIDERS_MVMNT_TOKENS=" + secrets[2],
		"HOOKSTREAM_EVENTLOG_NATS_LISTEN_TOKEN=" + secrets[3],
		"BILLING_TOKEN=" + secrets[4],
		// The client commands' own: serve and config check leave them alone.
		"HOOKSTREAM_TOKEN=" + secrets[10],
		"HOOKSTREAM_SERVER=127.0.0.1:9090",
	}, extra...)
}

// assertNoSecret fails if out holds a secret or the digest of one.
func assertNoSecret(t *testing.T, what, out string) {
	t.Helper()
	for _, s := range secrets {
		d := sha256.Sum256([]byte(s))
		for _, v := range []string{s, hex.EncodeToString(d[:])} {
			if strings.Contains(out, v) {
				t.Errorf("%s: got %q in it, want no secret or digest:\n%s", what, v, out)
			}
		}
	}
}

// run runs the command line args with environ and returns its output (stdout and stderr) and
// error.
func run(t *testing.T, environ []string, args ...string) (string, error) {
	t.Helper()
	return runStdin(t, "", environ, args...)
}

// runStdin is run with stdin as the standard input.
func runStdin(t *testing.T, stdin string, environ []string, args ...string) (string, error) {
	t.Helper()
	// A command that serves instead of failing ends with the test, not with the test binary.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := runWith(ctx, args, strings.NewReader(stdin), &out, &out, environ)
	return out.String(), err
}

// tempWriter returns a function writing a file of a temporary directory of t (mode 0600) and
// returning its path.
func tempWriter(t *testing.T) func(name, content string) string {
	dir := t.TempDir()
	return func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
}

// TestHelpHoldsNoSecret asks every command of the tree (hidden ones too) for its help with
// every secret in the environment: none may show, as a flag's default or otherwise; and every
// command not hidden has an example.
func TestHelpHoldsNoSecret(t *testing.T) {
	t.Parallel()
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, sub := range c.Commands() {
			walk(sub, append(append([]string(nil), path...), sub.Name()))
		}
	}
	walk(command(nil, nil, nil), nil)
	if len(paths) < 5 {
		t.Fatalf("got %d commands, want at least serve, config, config check and sign beside the root", len(paths))
	}
	for _, path := range paths {
		t.Run(strings.Join(append([]string{"hookstream"}, path...), "_"), func(t *testing.T) {
			t.Parallel()
			out, err := run(t, secretEnviron(), append(path, "--help")...)
			if err != nil {
				t.Fatalf("--help: got error %v, want none", err)
			}
			if !strings.Contains(out, "Usage:") {
				t.Fatalf("--help: got %q, want a usage", out)
			}
			if !strings.Contains(out, "Examples:") && !hidden(path) {
				t.Errorf("--help of %q: got %q, want an example", strings.Join(path, " "), out)
			}
			assertNoSecret(t, "help of "+strings.Join(path, " "), out)
		})
	}
}

// hidden reports whether the command at path is hidden from help (it needs no example).
func hidden(path []string) bool {
	c, _, err := command(nil, nil, nil).Find(path)
	return err == nil && c.Hidden
}

// TestErrorsHoldNoSecret runs commands that fail, with every secret in the environment and in
// the files, and checks that neither their output nor their error holds one, and that
// configuration errors are told apart (exit 2) from the others (exit 1).
func TestErrorsHoldNoSecret(t *testing.T) {
	t.Parallel()
	file := tempWriter(t)
	misplaced := file("misplaced.yaml", "providers:\n  movment:\n    tokens: ["+secrets[1]+"]\n  mvmnt:\n    insecure: "+secrets[2]+"\n")
	insecure := file("insecure.yaml", "listeners:\n  "+listenerID+":\n    insecure: true\n    tokens: ["+secrets[7]+"]\n")
	badDigest := file("digest.yaml", "auth:\n  principals:\n    billing:\n      tokens: ["+secrets[6]+"]\n      permissions: [read]\n")
	notMine := file("token", secrets[5])
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() }) // after the parallel subtests
	tests := []struct {
		name     string
		args     []string
		environ  []string
		wantCode int
	}{
		{name: "misplaced_secrets", args: []string{"config", "check", "--config", misplaced}, wantCode: 2},
		{name: "serve_misplaced_secrets", args: []string{"serve", "--config", misplaced}, wantCode: 2},
		{name: "insecure_beside_token", args: []string{"config", "check", "--config", insecure}, wantCode: 2},
		{name: "secret_as_token_digest", args: []string{"config", "check", "--config", badDigest}, wantCode: 2},
		{name: "unknown_variable", args: []string{"config", "check"}, environ: []string{"HOOKSTREAM_PROVIDERS_MVMNT_TOKEN=" + secrets[2]}, wantCode: 2},
		{name: "bad_duration_variable", args: []string{"config", "check"}, environ: []string{"HOOKSTREAM_SHUTDOWN_TIMEOUT=" + secrets[4]}, wantCode: 2},
		{name: "bad_moveapi_secret", args: []string{"config", "check"}, environ: []string{"HOOKSTREAM_PROVIDERS_MOVEAPI_SECRETS=whsec_" + secrets[1]}, wantCode: 2},
		{name: "secret_as_flag_value", args: []string{"config", "check", "--replicas", secrets[2]}, wantCode: 2},
		{name: "events_plaintext_beyond_loopback", args: []string{"events", "list", "--server", "10.1.2.3:9090"}, wantCode: 1},
		{name: "sign_without_file", args: []string{"sign", "--file", notMine + ".none"}, wantCode: 1},
		{name: "sign_hmac_bad_algorithm", args: []string{"sign", "--scheme", "hmac", "--header", "X-Sig", "--algorithm", "md5", "--secret-env", "LISTENER_HMAC"}, environ: []string{"LISTENER_HMAC=" + secrets[8]}, wantCode: 2},
		{name: "sign_hmac_without_header", args: []string{"sign", "--scheme", "hmac", "--secret-env", "LISTENER_HMAC"}, environ: []string{"LISTENER_HMAC=" + secrets[8]}, wantCode: 2},
		{name: "sign_hmac_secret_as_encoding", args: []string{"sign", "--scheme", "hmac", "--header", "X-Sig", "--encoding", secrets[8], "--secret-env", "LISTENER_HMAC"}, environ: []string{"LISTENER_HMAC=" + secrets[8]}, wantCode: 2},
		{name: "sign_unknown_scheme", args: []string{"sign", "--scheme", secrets[8]}, wantCode: 2},
		{name: "serve_address_in_use", args: []string{"serve", "--http-addr", busy.Addr().String(), "--grpc-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, wantCode: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := run(t, secretEnviron(tt.environ...), tt.args...)
			if err == nil {
				t.Fatalf("%v: got no error, want one", tt.args)
			}
			if got := ExitCode(err); got != tt.wantCode {
				t.Errorf("%v: got exit code %d (%v), want %d", tt.args, got, err, tt.wantCode)
			}
			if msg := err.Error(); msg == "" || strings.Contains(msg, "\n") {
				t.Errorf("%v: got error %q, want one line", tt.args, msg)
			}
			assertNoSecret(t, "error", err.Error())
			assertNoSecret(t, "output", out)
		})
	}
}

// TestExitCode checks the status of each kind of error.
func TestExitCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want int
	}{
		{name: "none", err: nil, want: 0},
		{name: "configuration", err: config.ErrInvalid, want: 2},
		{name: "wrapped_configuration", err: errors.Join(errors.New("start"), config.ErrInvalid), want: 2},
		{name: "runtime", err: errors.New("open event log: unavailable"), want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := ExitCode(tt.err); got != tt.want {
				t.Errorf("ExitCode(%v): got %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

// TestSignReadsSecretAtRunTime checks that sign takes the first Move API secret from the
// environment when it runs, and that it says so when there is none.
func TestSignReadsSecretAtRunTime(t *testing.T) {
	t.Parallel()
	body := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(body, []byte(`{"a":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, []string{"HOOKSTREAM_PROVIDERS_MOVEAPI_SECRETS=" + secrets[0] + ",whsec_b2xk"}, "sign", "--file", body, "--id", "msg_1")
	if err != nil {
		t.Fatalf("sign: got error %v, want none", err)
	}
	if !strings.Contains(out, "svix-signature: v1,") {
		t.Errorf("sign: got %q, want the svix headers", out)
	}
	_, err = run(t, nil, "sign", "--file", body)
	if got := ExitCode(err); got != 2 {
		t.Errorf("sign without a secret: got exit code %d (%v), want 2", got, err)
	}
}

// TestConfigCheck checks what `config check` prints of a valid configuration against
// testdata/config_check_<name>.golden (go test -update rewrites them), and that it prints no
// secret and no token digest although every kind of credential is configured.
func TestConfigCheck(t *testing.T) {
	t.Parallel()
	ca := testca.New(t)
	cert, key := ca.Server("hookstream")
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "billing.token")
	if err := os.WriteFile(tokenFile, []byte(secrets[5]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	jwks := filepath.Join(dir, "jwks.json")
	testca.WriteJWKS(t, jwks, testca.NewIssuer(t, "k1"))
	digest := sha256.Sum256([]byte(secrets[6]))
	tls := "  tls: {cert_file: " + cert + ", key_file: " + key + "}\n"
	full := "http:\n  addr: 0.0.0.0:8443\n" + tls +
		"grpc:\n  addr: 0.0.0.0:9090\n" + tls + "api:\n  addr: 10.0.0.5:9091\n" + tls +
		"eventlog:\n  nats_listen: 127.0.0.1:4222\n" +
		"listeners:\n  " + strings.ToUpper(listenerID) + ":\n    tokens: [" + secrets[7] + "]\n" +
		"    hmac: {header: X-Hub-Signature-256, prefix: sha256=, secrets: [" + secrets[8] + "]}\n" +
		"  1c9a0e53-8f7b-4d2e-a1c6-3b5d7e9f0a2b:\n    insecure: true\n" +
		"auth:\n  client_ca_file: " + ca.File + "\n  jwt: {jwks_file: " + jwks + ", issuer: https://idp.internal, audience: hookstream}\n  principals:\n" +
		"    billing:\n      tokens: [\"sha256:" + hex.EncodeToString(digest[:]) + "\"]\n" +
		"      token_files: [" + tokenFile + "]\n      token_env: [BILLING_TOKEN]\n" +
		"      permissions: [consume, read]\n      groups: [billing-*]\n      providers: [mvmnt, listener]\n" +
		"    ops:\n      certificates: [CN=ops, DNS:ops.internal]\n      jwt_subjects: [ops@idp.internal]\n      permissions: [admin]\n"
	external := "eventlog:\n  nats_url: nats://user:" + secrets[9] + "@10.0.0.1:4222, nats://" + secrets[9] + "@10.0.0.2:4222\n  replicas: 3\n"
	tests := []struct {
		name    string
		yaml    string
		environ []string
	}{
		{name: "defaults"},
		{name: "every_credential", yaml: full, environ: secretEnviron()},
		{name: "external_nats", yaml: external, environ: []string{"HOOKSTREAM_PROVIDERS_MOVEMENT_INSECURE=true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"config", "check"}
			if tt.yaml != "" {
				file := filepath.Join(t.TempDir(), "hookstream.yaml")
				if err := os.WriteFile(file, []byte(tt.yaml), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config", file)
			}
			got, err := run(t, tt.environ, args...)
			if err != nil {
				t.Fatalf("config check: got error %v, want none", err)
			}
			assertNoSecret(t, "config check", got)
			got = strings.ReplaceAll(strings.ReplaceAll(got, filepath.Dir(ca.File), "$CA"), dir, "$DIR")
			golden := filepath.Join("testdata", "config_check_"+tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("config check output differs from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}
