package cli_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mvmntv1 "github.com/hookstream/hookstream/gen/hookstream/mvmnt/v1"
	"github.com/hookstream/hookstream/server/auth"
	"github.com/hookstream/hookstream/server/cli"
	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/daemon"
	"github.com/hookstream/hookstream/server/internal/testca"
	"github.com/hookstream/hookstream/server/internal/testenv"
)

const readerToken = "cli-reader-token-0123456789"

// consumerToken is the token of a principal with the consume and admin permissions.
const consumerToken = "cli-consumer-token-0123456789"

// serveSecured runs a daemon whose internal API needs credentials over TLS: the token
// readerToken and the client certificate CN=cli.internal are principals with the read
// permission, consumerToken one with consume and admin. One MVMNT event is stored; Movement
// takes the token "movement-secret".
func serveSecured(t *testing.T) (*daemon.Server, *testca.CA) {
	t.Helper()
	s, ca, _ := serveStoppable(t)
	return s, ca
}

// serveStoppable is serveSecured, also returning a stop that shuts the daemon down (as SIGTERM
// does) and waits for it.
func serveStoppable(t *testing.T) (*daemon.Server, *testca.CA, func()) {
	t.Helper()
	ca := testca.New(t)
	cert, key := ca.Server("hookstream")
	cfg := config.Default()
	cfg.HTTP.Addr, cfg.GRPC.Addr, cfg.API.Addr, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	cfg.GRPC.TLS = config.TLS{CertFile: cert, KeyFile: key}
	cfg.Auth.ClientCAFile = ca.File
	cfg.Providers.MVMNT.Tokens = []string{"mvmnt-key"}
	cfg.Providers.Movement.Tokens = []string{"movement-secret"}
	cfg.Auth.Principals = map[string]config.Principal{
		"reader":     {Tokens: []string{auth.TokenDigest(readerToken)}, Permissions: []string{"read"}},
		"reader-tls": {Certificates: []string{"CN=cli.internal"}, Permissions: []string{"read"}},
		"consumer":   {Tokens: []string{auth.TokenDigest(consumerToken)}, Permissions: []string{"consume", "admin"}},
	}
	s, stop := cli.StartDaemon(t, cfg)

	raw := testenv.Sample(t, "mvmnt/shipment_delivered.json", &mvmntv1.Delivery{})
	req, _ := http.NewRequest("POST", "http://"+s.HTTPAddr().String()+"/webhooks/mvmnt", bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-api-key", "mvmnt-key")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("store an event: status %d", resp.StatusCode)
	}
	return s, ca, stop
}

// TestClientCredentials runs `hookstream events list` against a daemon whose internal API needs
// credentials, with the credentials from each place a client command takes them.
func TestClientCredentials(t *testing.T) {
	t.Parallel()
	s, ca := serveSecured(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tokenFile := write("token", readerToken+"\n")
	certFile, keyFile := ca.ClientFiles("cli.internal")
	server := s.GRPCAddr().String()
	clientConfig := write("client.yaml", "server: "+server+"\ntoken_file: "+tokenFile+"\nca_file: "+ca.File+"\n")
	badConfig := write("bad.yaml", "server: "+server+"\ntokn_file: x\n")
	env := func(kv ...string) []string {
		var environ []string
		for i := 0; i < len(kv); i += 2 {
			environ = append(environ, kv[i]+"="+kv[i+1])
		}
		return environ
	}
	for _, tt := range []struct {
		name     string
		args     []string
		environ  []string
		wantCode codes.Code // of a refused call; OK for one that lists the event
		wantErr  bool       // a settings error, before any call
	}{
		{name: "token_env", args: []string{"--server", server, "--ca-file", ca.File}, environ: env("HOOKSTREAM_TOKEN", readerToken)},
		{name: "token_file_flag", args: []string{"--server", server, "--ca-file", ca.File, "--token-file", tokenFile}, environ: env()},
		{name: "env_only", args: nil, environ: env("HOOKSTREAM_SERVER", server, "HOOKSTREAM_CA_FILE", ca.File, "HOOKSTREAM_TOKEN_FILE", tokenFile)},
		{name: "client_config_flag", args: []string{"--client-config", clientConfig}, environ: env()},
		{name: "client_config_env", args: nil, environ: env("HOOKSTREAM_CLIENT_CONFIG", clientConfig)},
		{name: "client_config_default_path", args: nil, environ: env("XDG_CONFIG_HOME", xdgWith(t, clientConfig))},
		{name: "client_certificate", args: []string{"--server", server, "--ca-file", ca.File, "--cert-file", certFile, "--key-file", keyFile}, environ: env()},
		{name: "no_credentials", args: []string{"--server", server, "--ca-file", ca.File}, environ: env(), wantCode: codes.Unauthenticated},
		{name: "wrong_token", args: []string{"--server", server, "--ca-file", ca.File}, environ: env("HOOKSTREAM_TOKEN", "not-"+readerToken), wantCode: codes.Unauthenticated},
		{name: "plaintext_beyond_loopback", args: []string{"--server", "10.1.2.3:9090"}, environ: env("HOOKSTREAM_TOKEN", readerToken), wantErr: true},
		{name: "unknown_client_config_key", args: []string{"--client-config", badConfig}, environ: env(), wantErr: true},
		{name: "empty_token_file", args: []string{"--server", server, "--ca-file", ca.File, "--token-file", write("empty", "\n")}, environ: env(), wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := cli.Run(context.Background(), append([]string{"events", "list"}, tt.args...), &stdout, &stderr, tt.environ)
			if strings.Contains(stdout.String()+stderr.String()+errString(err), readerToken) {
				t.Errorf("the token appears in the output or the error")
			}
			switch {
			case tt.wantErr:
				if err == nil || status.Code(err) != codes.Unknown {
					t.Errorf("got %v, want a settings error", err)
				}
			case tt.wantCode != codes.OK:
				if status.Code(err) != tt.wantCode {
					t.Errorf("got %v, want %v", err, tt.wantCode)
				}
			default:
				if err != nil || !strings.Contains(stdout.String(), `"SHIPMENT_DELIVERED"`) {
					t.Errorf("got %v and output %q, want the stored event", err, stdout.String())
				}
			}
		})
	}
}

// xdgWith returns an XDG_CONFIG_HOME holding hookstream/client.yaml as a copy of file.
func xdgWith(t *testing.T, file string) string {
	t.Helper()
	home := t.TempDir()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(home, "hookstream"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "hookstream", "client.yaml"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return home
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
