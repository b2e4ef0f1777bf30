// Command nearnet finds peers on the local network, connects to them
// securely and exchanges messages. Run "nearnet help" for the commands;
// internal/cli implements them.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/nearnet/nearnet/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, the next one kills the process at once
	// rather than waiting for a graceful shutdown that may be stuck.
	context.AfterFunc(ctx, stop)
	err := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		cli.PrintError(os.Stderr, err)
		os.Exit(cli.ExitCode(err))
	}
}
