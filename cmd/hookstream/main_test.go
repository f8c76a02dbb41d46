package main_test

import (
	"bufio"
	"encoding/json"
	"net/http"

	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestSignals builds the binary, starts it with its defaults on loopback ports, and checks that
// it serves and then exits cleanly (status 0) on SIGTERM and on SIGINT.
func TestSignals(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "hookstream")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(bin, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0", "--data-dir", t.TempDir())
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()

			// The first log line names the bound addresses.
			lines := bufio.NewScanner(stderr)
			var serving struct {
				Msg  string `json:"msg"`
				HTTP string `json:"http"`
			}
			for serving.Msg != "hookstream serving" {
				if !lines.Scan() {
					t.Fatalf("hookstream exited before serving: %v", lines.Err())
				}
				if err := json.Unmarshal(lines.Bytes(), &serving); err != nil {
					t.Fatalf("log line %q is not JSON: %v", lines.Text(), err)
				}
			}
			go func() {
				for lines.Scan() {
				}
			}()
			resp, err := http.Get("http://" + serving.HTTP + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /healthz: got %d, want 200", resp.StatusCode)
			}

			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("after %v: exit %v, want status 0", sig, err)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("still running 30 s after %v", sig)
			}
		})
	}
}
