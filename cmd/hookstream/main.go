// Command hookstream receives webhooks from outside providers, stores them durably as typed,
// validated protobuf events and streams them to internal services over gRPC.
//
// Usage:
//
//	hookstream [serve] [flags]
//	hookstream config check [flags]
//	hookstream version
//
// It exits with status 2 when the configuration cannot be used, 1 on any other failure.
//
// See README.md for the configuration and the contract with providers and consumers.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hookstream/hookstream/server/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Environ())
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "hookstream:", cli.Message(err))
		os.Exit(cli.ExitCode(err))
	}
}
