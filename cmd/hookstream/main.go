// Command hookstream receives webhooks from outside providers, stores them durably as typed,
// validated protobuf events and streams them to internal services over gRPC.
//
// Usage:
//
//	hookstream [serve] [flags]
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
	err := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "hookstream:", err)
		os.Exit(1)
	}
}
