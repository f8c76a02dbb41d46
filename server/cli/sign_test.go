package cli

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/verify"
)

// headerFlag is one `-H 'Name: value'` of sign's output.
var headerFlag = regexp.MustCompile(`-H '([^:']+): ([^']*)'`)

// printedHeaders parses sign's output into the headers curl would send.
func printedHeaders(t *testing.T, out string) http.Header {
	t.Helper()
	h := http.Header{}
	for _, m := range headerFlag.FindAllStringSubmatch(out, -1) {
		h.Add(m[1], m[2])
	}
	if len(h) == 0 {
		t.Fatalf("sign printed %q, want -H flags", out)
	}
	return h
}

// TestSignVerifies signs bodies from a file and from stdin with each scheme and checks that the
// printed headers pass server/verify's verifiers built as serve builds them: the Move API's Svix
// verifier, and a listener's HMAC verifier with the same hmac settings.
func TestSignVerifies(t *testing.T) {
	t.Parallel()
	const body = `{"event_type":"incident.created","data":{"incident_id":"INC0123456"}}` + "\n"
	file := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	svix, err := verify.Svix([]string{secrets[0]}, 5*time.Minute, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	hmacVerifier := func(header, algorithm, prefix, encoding string) verify.Verifier {
		v, err := verify.HMAC(header, algorithm, prefix, encoding, []string{"older-secret", secrets[8]})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	moveAPI := []string{"HOOKSTREAM_PROVIDERS_MOVEAPI_SECRETS=" + secrets[0] + ",whsec_b2xk"}
	listener := []string{"LISTENER_HMAC=" + secrets[8] + ",older-secret"}
	tests := []struct {
		name    string
		args    []string
		stdin   string
		environ []string
		v       verify.Verifier
	}{
		{name: "svix_file", args: []string{"--file", file}, environ: moveAPI, v: svix},
		{name: "svix_stdin_by_default", stdin: body, environ: moveAPI, v: svix},
		{name: "svix_stdin_dash", args: []string{"--file", "-", "--id", "msg_1"}, stdin: body, environ: moveAPI, v: svix},
		{name: "svix_secret_env", args: []string{"--secret-env", "MY_SVIX"}, stdin: body, environ: []string{"MY_SVIX=" + secrets[0]}, v: svix},
		{
			name:    "hmac_github_style_stdin",
			args:    []string{"--scheme", "hmac", "--header", "X-Hub-Signature-256", "--prefix", "sha256=", "--secret-env", "LISTENER_HMAC"},
			stdin:   body,
			environ: listener,
			v:       hmacVerifier("X-Hub-Signature-256", "sha256", "sha256=", "hex"),
		},
		{
			name:    "hmac_sha512_base64_file",
			args:    []string{"--scheme", "hmac", "--header", "X-Signature", "--algorithm", "sha512", "--encoding", "base64", "--secret-env", "LISTENER_HMAC", "--file", file},
			environ: listener,
			v:       hmacVerifier("X-Signature", "sha512", "", "base64"),
		},
		{
			name:    "hmac_config_defaults",
			args:    []string{"--scheme", "hmac", "--header", "X-Sig", "--secret-env", "LISTENER_HMAC"},
			stdin:   body,
			environ: listener,
			v:       hmacVerifier("X-Sig", config.DefaultHMACAlgorithm, "", config.DefaultHMACEncoding),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := runStdin(t, tt.stdin, tt.environ, append([]string{"sign"}, tt.args...)...)
			if err != nil {
				t.Fatalf("sign %v: got error %v, want none", tt.args, err)
			}
			h := printedHeaders(t, out)
			if err := verify.Verify(tt.v, h, nil, []byte(body)); err != nil {
				t.Errorf("sign %v printed %q: got %v from the verifier, want none", tt.args, out, err)
			}
			if err := verify.Verify(tt.v, h, nil, []byte(body+" ")); !errors.Is(err, verify.ErrBadCredentials) {
				t.Errorf("sign %v: another body got %v, want %v", tt.args, err, verify.ErrBadCredentials)
			}
		})
	}
}

// TestSignNeedsASecret checks that sign refuses, as a configuration error (exit 2) naming no
// value, to sign without a secret or without the settings of its scheme.
func TestSignNeedsASecret(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		environ []string
	}{
		{name: "svix_no_variable", args: nil},
		{name: "svix_empty_named_variable", args: []string{"--secret-env", "NOPE"}, environ: []string{"HOOKSTREAM_PROVIDERS_MOVEAPI_SECRETS=" + secrets[0]}},
		{name: "hmac_no_secret_env", args: []string{"--scheme", "hmac", "--header", "X-Sig"}, environ: []string{"HOOKSTREAM_PROVIDERS_MOVEAPI_SECRETS=" + secrets[0]}},
		{name: "hmac_no_header", args: []string{"--scheme", "hmac", "--secret-env", "S"}, environ: []string{"S=" + secrets[8]}},
		{name: "hmac_bad_encoding", args: []string{"--scheme", "hmac", "--header", "X-Sig", "--encoding", "base32", "--secret-env", "S"}, environ: []string{"S=" + secrets[8]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := runStdin(t, "{}", tt.environ, append([]string{"sign"}, tt.args...)...)
			if got := ExitCode(err); got != 2 {
				t.Errorf("sign %v: got exit code %d (%v), want 2", tt.args, got, err)
			}
			if err != nil {
				assertNoSecret(t, "error", err.Error())
			}
			assertNoSecret(t, "output", out)
		})
	}
}
