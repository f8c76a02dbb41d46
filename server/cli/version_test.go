package cli

import (
	"strings"
	"testing"
)

// TestVersion runs `hookstream version` and `hookstream --version`: both print the same five
// lines, each naming what it reports and a non-empty value.
func TestVersion(t *testing.T) {
	t.Parallel()
	want := []string{"hookstream", "commit", "go", "nats-server", "nats.go"}
	tests := []struct {
		name string
		args []string
	}{
		{name: "command", args: []string{"version"}},
		{name: "flag", args: []string{"--version"}},
	}
	var outs []string
	for _, tt := range tests {
		out, err := run(t, secretEnviron(), tt.args...)
		if err != nil {
			t.Fatalf("%v: got error %v, want none", tt.args, err)
		}
		outs = append(outs, out)
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if len(lines) != len(want) {
				t.Fatalf("%v: got %d lines %q, want %d", tt.args, len(lines), out, len(want))
			}
			for i, name := range want {
				got, value, ok := strings.Cut(lines[i], ": ")
				if !ok || got != name || strings.TrimSpace(value) == "" {
					t.Errorf("%v: line %d is %q, want %q and a value", tt.args, i+1, lines[i], name+": ")
				}
			}
			assertNoSecret(t, "version", out)
		})
	}
	if outs[0] != outs[1] {
		t.Errorf("version printed %q, --version %q: want the same", outs[0], outs[1])
	}
}
