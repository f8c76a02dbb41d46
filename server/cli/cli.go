// Package cli is hookstream's command line: `hookstream serve` (the default) runs the service;
// client commands for people are added beside it. Commands are built with cobra; configuration is
// loaded by package config.
package cli

import (
	"context"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/daemon"
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

	// Without a subcommand, hookstream serves: the flags of serve are accepted on the root too.
	config.RegisterFlags(root.Flags())
	root.Args = cobra.NoArgs
	root.RunE = serve.RunE

	return root.ExecuteContext(ctx)
}
