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
	"strings"
	"syscall"

	"github.com/hookstream/hookstream/server/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Environ())
	stop()
	if err != nil {
		// One line, whatever the error joined: scripts and people read the first line.
		fmt.Fprintln(os.Stderr, "hookstream:", strings.ReplaceAll(err.Error(), "\n", "; "))
		os.Exit(cli.ExitCode(err))
	}
}
