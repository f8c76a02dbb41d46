package cli

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
)

// Module paths whose versions `hookstream version` reports.
const (
	natsServerModule = "github.com/nats-io/nats-server/v2"
	natsGoModule     = "github.com/nats-io/nats.go"
)

// build is what `hookstream version` prints: read from the binary's build information, with the
// versions the nats packages declare when that information lacks them.
type build struct {
	version, commit, goVersion, natsServer, natsGo string
}

// readBuild returns the build of the running binary. The version is the main module's, "(devel)"
// for a build from a clone; the commit is vcs.revision, with " (modified)" for a dirty tree, or
// "unknown" when the build stamped none (go run, go test, -buildvcs=false).
func readBuild() build {
	b := build{
		version:    "(devel)",
		commit:     "unknown",
		goVersion:  runtime.Version(),
		natsServer: "v" + server.VERSION,
		natsGo:     "v" + nats.Version,
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if v := info.Main.Version; v != "" {
		b.version = v
	}
	if info.GoVersion != "" {
		b.goVersion = info.GoVersion
	}
	var revision, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if revision != "" {
		b.commit = revision
		if modified == "true" {
			b.commit += " (modified)"
		}
	}
	for _, dep := range info.Deps {
		if dep.Replace != nil {
			dep = dep.Replace
		}
		switch dep.Path {
		case natsServerModule:
			b.natsServer = dep.Version
		case natsGoModule:
			b.natsGo = dep.Version
		}
	}
	return b
}

// String is the build as `hookstream version` prints it: one "name: value" line each.
func (b build) String() string {
	var s strings.Builder
	fmt.Fprintf(&s, "hookstream: %s\n", b.version)
	fmt.Fprintf(&s, "commit: %s\n", b.commit)
	fmt.Fprintf(&s, "go: %s\n", b.goVersion)
	fmt.Fprintf(&s, "nats-server: %s\n", b.natsServer)
	fmt.Fprintf(&s, "nats.go: %s\n", b.natsGo)
	return s.String()
}

// versionCommand is `hookstream version`, which prints what `hookstream --version` prints.
func versionCommand(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print hookstream's version and commit, and the Go, nats-server and nats.go versions it was built with",
		Example: "  hookstream version\n  hookstream --version",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := io.WriteString(stdout, readBuild().String())
			return err
		},
	}
}
