package main_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestVersionNamesNATSServer builds the binary and checks that `--version` names the
// nats-server version go.mod requires, the version the binary was built with.
func TestVersionNamesNATSServer(t *testing.T) {
	t.Parallel()
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var want string
	for _, line := range strings.Split(string(mod), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "github.com/nats-io/nats-server/v2" {
			want = f[1]
		}
	}
	if want == "" {
		t.Fatal("go.mod requires no github.com/nats-io/nats-server/v2")
	}
	bin := build(t)
	tests := []struct {
		name string
		args []string
	}{
		{name: "flag", args: []string{"--version"}},
		{name: "command", args: []string{"version"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(bin, tt.args...)
			cmd.Env = withoutHookstream(os.Environ())
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("hookstream %s: %v", tt.args[0], err)
			}
			if !strings.Contains(string(out), "\nnats-server: "+want+"\n") {
				t.Errorf("hookstream %s: got %q, want the line \"nats-server: %s\"", tt.args[0], out, want)
			}
		})
	}
}
