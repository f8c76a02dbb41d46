package main_test

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExitCodes runs the binary and checks its status: 0 for a valid configuration checked, 2
// for a configuration that cannot be used (from serve and from config check alike), 1 for a
// failure at run time.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	bin := build(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("providers:\n  movment:\n    tokens: [t]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() }) // after the parallel subtests
	local := []string{"--grpc-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0"}
	tests := []struct {
		name string
		args []string
		env  []string
		want int
	}{
		{name: "check_valid", args: []string{"config", "check"}, want: 0},
		{name: "check_unknown_key", args: []string{"config", "check", "--config", bad}, want: 2},
		{name: "check_unknown_variable", args: []string{"config", "check"}, env: []string{"HOOKSTREAM_GRPC_ADR=127.0.0.1:1"}, want: 2},
		{name: "check_grpc_beyond_loopback", args: []string{"config", "check", "--grpc-addr", "0.0.0.0:9090"}, want: 2},
		{name: "serve_unknown_key", args: append([]string{"serve", "--config", bad}, local...), want: 2},
		{name: "default_command_unknown_key", args: append([]string{"--config", bad}, local...), want: 2},
		{name: "serve_bad_flag_value", args: []string{"serve", "--replicas", "many"}, want: 2},
		{name: "serve_missing_file", args: []string{"serve", "--config", filepath.Join(dir, "none.yaml")}, want: 2},
		{name: "serve_address_in_use", args: append([]string{"serve", "--http-addr", busy.Addr().String(), "--data-dir", t.TempDir()}, local...), want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(bin, tt.args...)
			cmd.Env = append(withoutHookstream(os.Environ()), tt.env...)
			cmd.WaitDelay = 30 * time.Second
			out, err := cmd.CombinedOutput()
			got := 0
			if exit := (*exec.ExitError)(nil); errors.As(err, &exit) {
				got = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("hookstream %s: got exit code %d, want %d; output:\n%s", strings.Join(tt.args, " "), got, tt.want, out)
			}
		})
	}
}

// withoutHookstream is environ without the HOOKSTREAM_* variables of whoever runs the test.
func withoutHookstream(environ []string) []string {
	var out []string
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "HOOKSTREAM_") {
			out = append(out, kv)
		}
	}
	return out
}
