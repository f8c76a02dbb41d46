// Package cli is hookstream's command line: `hookstream serve` (the default) runs the service;
// client commands for people are added beside it. Commands are built with cobra; configuration is
// loaded by package config.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/daemon"
	"github.com/hookstream/hookstream/server/loadtest"
	"github.com/hookstream/hookstream/server/logs"
)

// Run executes the command line args (without the program name) and returns the error of the
// command that ran. environ is os.Environ() in production: commands read it when they run, so
// that no value of it (a secret) ever shows as a flag's default in help. It stops when ctx is
// done. Errors of the configuration (and of the flags) wrap config.ErrInvalid: see ExitCode.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, environ []string) error {
	return runWith(ctx, args, os.Stdin, stdout, stderr, environ)
}

// runWith is Run reading stdin where a command reads its standard input (`sign --file -`).
func runWith(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, environ []string) error {
	root := command(stdout, stderr, environ)
	root.SetIn(stdin)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// command is hookstream's command tree, writing to stdout and stderr and reading environ.
func command(stdout, stderr io.Writer, environ []string) *cobra.Command {
	getenv := lookup(environ)
	root := &cobra.Command{
		Use:           "hookstream",
		Example:       "  hookstream --config hookstream.yaml\n  hookstream version",
		Short:         "Receive webhooks, store them as typed events, stream them over gRPC",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(flagError)
	// --version prints what `hookstream version` does; the template ignores cobra's one line.
	root.Version = readBuild().version
	root.SetVersionTemplate(readBuild().String())

	serve := &cobra.Command{
		Use:     "serve",
		Example: "  hookstream serve --dev\n  hookstream serve --config hookstream.yaml\n  HOOKSTREAM_PROVIDERS_MVMNT_TOKENS=mvmnt-token hookstream serve --data-dir /var/lib/hookstream",
		Short:   "Run the hookstream service (the default command)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cmd.Flags(), serverEnviron(environ))
			if err != nil {
				return err
			}
			dev, _ := cmd.Flags().GetBool("dev")
			var creds config.DevCredentials
			if dev {
				if cfg, creds, err = devConfig(cfg); err != nil {
					return err
				}
			}
			log, err := logs.New(stderr, cfg.Log.Level)
			if err != nil {
				return err // checked by config.Load already
			}
			s, err := daemon.New(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			if dev {
				// The listeners are bound: a request sent now waits for Run, which serves at once.
				note, err := writeDevClientConfig(getenv, s.GRPCAddr().String(), s.HTTPAddr().String(), filepath.Join(cfg.DataDir, devCredentialsFile))
				if err != nil {
					note = "client config: not written: " + err.Error()
				}
				printDevUsage(stdout, cfg, creds, s.HTTPAddr().String(), note)
			}
			return s.Run(cmd.Context())
		},
	}
	config.RegisterFlags(serve.Flags())
	registerDevFlag(serve.Flags())
	root.AddCommand(serve)

	root.AddCommand(configCommand(stdout, environ), benchCommand(stdout, stderr), bareCommand(stderr), signCommand(stdout, getenv), eventsCommand(stdout, getenv), tailCommand(stdout, stderr, getenv), versionCommand(stdout))
	root.AddCommand(quarantineCommand(stdout, stderr, getenv), sendCommand(stdout, getenv), groupsCommand(stdout, getenv))

	// Without a subcommand, hookstream serves: the flags of serve are accepted on the root too.
	config.RegisterFlags(root.Flags())
	registerDevFlag(root.Flags())
	root.Args = cobra.NoArgs
	root.RunE = serve.RunE
	return root
}

// flagError makes a flag that cannot be parsed a configuration error like any other (exit 2),
// named without its value: pflag quotes the value, which may be a secret given to the wrong flag.
func flagError(_ *cobra.Command, err error) error {
	var invalid *pflag.InvalidValueError
	if errors.As(err, &invalid) {
		f := invalid.GetFlag()
		return fmt.Errorf("%w: flag --%s: the value is not a valid %s", config.ErrInvalid, f.Name, f.Value.Type())
	}
	return fmt.Errorf("%w: %w", config.ErrInvalid, err)
}

// ExitCode is the process status for the error Run returned: 0 for none, 2 for a configuration
// that cannot be used (errors wrapping config.ErrInvalid, flags included), 1 for any other
// failure.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, config.ErrInvalid):
		return 2
	default:
		return 1
	}
}

// clientEnv are the variables the client commands read beside those of clientFlags.
var clientEnv = []string{"HOOKSTREAM_CLIENT_CONFIG", "HOOKSTREAM_TOKEN", "HOOKSTREAM_TLS", webhookURLEnv, devCredentialsEnv}

// serverEnviron is environ without the client commands' variables, which a shell may hold for
// `hookstream events` beside those of serve: config refuses the HOOKSTREAM_* variables it does
// not know.
func serverEnviron(environ []string) []string {
	client := make(map[string]bool, len(clientEnv)+len(clientFlags))
	for _, name := range clientEnv {
		client[name] = true
	}
	for _, f := range clientFlags {
		client[f.env] = true
	}
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		if name, _, _ := strings.Cut(kv, "="); !client[name] {
			out = append(out, kv)
		}
	}
	return out
}

// lookup is os.Getenv over environ ("NAME=value" entries; a later entry wins, as in os/exec).
func lookup(environ []string) func(string) string {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		vars[name] = value
	}
	return func(name string) string { return vars[name] }
}

// benchCommand is `hookstream bench`: the front-door load benchmark (package loadtest).
func benchCommand(stdout, stderr io.Writer) *cobra.Command {
	var o loadtest.Options
	cmd := &cobra.Command{
		Use:     "bench",
		Example: "  hookstream bench --connections 64 --duration 10s",
		Short:   "Measure the webhook front door against a bare net/http handler (loopback only)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			dir, err := os.MkdirTemp("", "hookstream-bench-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			o.Executable, o.DataDir = exe, dir
			fmt.Fprintf(stderr, "measuring %d connections for %v per server...\n", o.Connections, o.Duration)
			rs, err := loadtest.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			fmt.Fprint(stdout, loadtest.Format(rs))
			return nil
		},
	}
	cmd.Flags().IntVar(&o.Connections, "connections", 64, "concurrent connections")
	cmd.Flags().DurationVar(&o.Duration, "duration", 10*time.Second, "measured time per server")
	cmd.Flags().StringSliceVar(&o.Durabilities, "durability", []string{"always", "os"}, "durabilities to measure hookstream with")
	return cmd
}

// bareCommand is the bare handler the benchmark compares with (hidden).
func bareCommand(stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:    "loadtest-bare",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE:   func(cmd *cobra.Command, _ []string) error { return loadtest.ServeBare(cmd.Context(), stderr) },
	}
}
