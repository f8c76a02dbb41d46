// Package cli is hookstream's command line: `hookstream serve` (the default) runs the service;
// client commands for people are added beside it. Commands are built with cobra; configuration is
// loaded by package config.
package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/daemon"
	"github.com/hookstream/hookstream/server/loadtest"
	"github.com/hookstream/hookstream/server/verify"
)

// Run executes the command line args (without the program name) and returns the error of the
// command that ran. getenv is os.Getenv in production. It stops when ctx is done.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	root := &cobra.Command{
		Use:           "hookstream",
		Short:         "Receive webhooks, store them as typed events, stream them over gRPC",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)

	serve := &cobra.Command{
		Use:   "serve",
		Short: "Run the hookstream service (the default command)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cmd.Flags(), getenv)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewJSONHandler(stderr, nil))
			s, err := daemon.New(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			return s.Run(cmd.Context())
		},
	}
	config.RegisterFlags(serve.Flags())
	root.AddCommand(serve)

	root.AddCommand(benchCommand(stdout, stderr), bareCommand(stderr), signCommand(stdout), eventsCommand(stdout, getenv))

	// Without a subcommand, hookstream serves: the flags of serve are accepted on the root too.
	config.RegisterFlags(root.Flags())
	root.Args = cobra.NoArgs
	root.RunE = serve.RunE

	return root.ExecuteContext(ctx)
}

// benchCommand is `hookstream bench`: the front-door load benchmark (package loadtest).
func benchCommand(stdout, stderr io.Writer) *cobra.Command {
	var o loadtest.Options
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the webhook front door against a bare net/http handler (loopback only)",
		Args:  cobra.NoArgs,
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

// signCommand is `hookstream sign`: Svix headers for a body, to send a Move API webhook by hand.
func signCommand(stdout io.Writer) *cobra.Command {
	var secret, id, file string
	cmd := &cobra.Command{
		Use:   "sign",
		Short: "Print the Svix headers (svix-id, svix-timestamp, svix-signature) of a body, as curl -H flags",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			if id == "" {
				id = "msg_" + strconv.FormatInt(time.Now().UnixNano(), 36)
			}
			now := time.Now()
			sig, err := verify.Sign(secret, id, now, body)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "-H 'svix-id: %s' -H 'svix-timestamp: %d' -H 'svix-signature: %s'\n", id, now.Unix(), sig)
			return nil
		},
	}
	cmd.Flags().StringVar(&secret, "secret", os.Getenv("HOOKSTREAM_PROVIDERS_MOVEAPI_SECRETS"), "Svix secret (whsec_...)")
	cmd.Flags().StringVar(&id, "id", "", "message id (default: a new one)")
	cmd.Flags().StringVar(&file, "file", "", "the JSON body to sign")
	cmd.MarkFlagRequired("file")
	return cmd
}
