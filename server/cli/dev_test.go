package cli

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer a running command writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// devEnviron is an environment whose client config path is under home.
func devEnviron(home string) []string {
	return []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, "xdg")}
}

// startDev runs `serve --dev` on loopback ports chosen by the system with data in dataDir and
// environ, waits for its printed usage and returns it; the server stops with the test.
func startDev(t *testing.T, environ []string, dataDir string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"serve", "--dev", "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0", "--data-dir", dataDir, "--log-level", "warn"}, &out, &out, environ)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve --dev: got error %v, want none after cancel", err)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "tail --from all") {
		select {
		case err := <-done:
			t.Fatalf("serve --dev: ended early with %v:\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve --dev: got %q, want the usage within 20 s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return out.String()
}

// mvmntCurl finds, in the usage, the MVMNT URL and token of the printed curl line.
var mvmntCurl = regexp.MustCompile(`curl -i (http://\S+/webhooks/mvmnt) -H 'x-api-key: (\S+)'`)

// TestServeDev starts serve --dev twice on one data dir: the credentials file is private and
// reused, a webhook sent with the printed MVMNT token is accepted, and `events list` finds it
// through the client config serve --dev wrote.
func TestServeDev(t *testing.T) {
	t.Parallel()
	home, dataDir := t.TempDir(), t.TempDir()
	environ := devEnviron(home)
	usage := startDev(t, environ, dataDir)

	creds := filepath.Join(dataDir, devCredentialsFile)
	fi, err := os.Stat(creds)
	if err != nil {
		t.Fatalf("credentials file: %v", err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("credentials file mode: got %v, want 0600", got)
	}
	m := mvmntCurl.FindStringSubmatch(usage)
	if m == nil {
		t.Fatalf("usage: got %q, want an MVMNT curl line", usage)
	}
	req, err := http.NewRequest(http.MethodPost, m[1], strings.NewReader(devMVMNTBody))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-api-key", m[2])
	req.Header.Set("content-type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook with the printed token: got %d, want 200", resp.StatusCode)
	}

	if !strings.Contains(usage, "go run ./cmd/hookstream send mvmnt") {
		t.Errorf("usage: got %q, want it to show hookstream send", usage)
	}
	clientConfig := filepath.Join(home, "xdg", "hookstream", "client.yaml")
	if !strings.Contains(usage, "wrote "+clientConfig) {
		t.Errorf("usage: got %q, want it to name %s", usage, clientConfig)
	}
	got, err := run(t, environ, "events", "list")
	if err != nil {
		t.Fatalf("events list: got error %v, want none", err)
	}
	if !strings.Contains(got, "SHIPMENT_DELIVERED") {
		t.Errorf("events list: got %q, want the MVMNT event", got)
	}

	// A second start on the same data dir prints the same token (its first server still runs:
	// its own ports, its own client config write).
	before, err := os.ReadFile(creds)
	if err != nil {
		t.Fatal(err)
	}
	second := startDev(t, devEnviron(t.TempDir()), dataDirCopy(t, dataDir))
	if m2 := mvmntCurl.FindStringSubmatch(second); m2 == nil || m2[2] != m[2] {
		t.Errorf("second start: got usage %q, want MVMNT token %q again", second, m[2])
	}
	after, err := os.ReadFile(creds)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("credentials file changed by a second start")
	}
}

// dataDirCopy is a new data dir holding only the credentials file of dataDir (two embedded NATS
// servers cannot share one store).
func dataDirCopy(t *testing.T, dataDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, devCredentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, devCredentialsFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestServeDevKeepsForeignClientConfig checks that serve --dev leaves a client config it did
// not write alone, and says so.
func TestServeDevKeepsForeignClientConfig(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	path := filepath.Join(home, "xdg", "hookstream", "client.yaml")
	mine := "server: 10.0.0.1:9090\nca_file: /etc/ca.pem\n"
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(mine), 0o600); err != nil {
		t.Fatal(err)
	}
	usage := startDev(t, devEnviron(home), t.TempDir())
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != mine {
		t.Errorf("client config: got %q, want %q untouched", got, mine)
	}
	if !strings.Contains(usage, "left "+path+" alone") {
		t.Errorf("usage: got %q, want it to say %s was left alone", usage, path)
	}
}

// TestServeDevRefusesBeyondLoopback checks that serve --dev refuses, as a configuration error,
// every listener beyond loopback, before writing anything.
func TestServeDevRefusesBeyondLoopback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
	}{
		{name: "http_all_interfaces", args: []string{"--http-addr", "0.0.0.0:0"}},
		{name: "grpc_all_interfaces", args: []string{"--grpc-addr", "0.0.0.0:0"}},
		{name: "api_lan_address", args: []string{"--api-addr", "10.0.0.5:0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dataDir := t.TempDir()
			args := append([]string{"serve", "--dev", "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0", "--data-dir", dataDir}, tt.args...)
			_, err := run(t, devEnviron(t.TempDir()), args...)
			if got := ExitCode(err); got != 2 {
				t.Errorf("%v: got exit code %d (%v), want 2", args, got, err)
			}
			if _, err := os.Stat(filepath.Join(dataDir, devCredentialsFile)); err == nil {
				t.Errorf("%v: got a credentials file, want none written", args)
			}
		})
	}
}
