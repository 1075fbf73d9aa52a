// Command loft is a personal storage appliance: chunked, deduplicated,
// versioned storage on each of a few machines. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/loftstore/loft/cli"
)

func main() {
	// A soft memory target keeps the heap small on small machines; the put
	// and get pipelines bound their live data well below it.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(48 << 20)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal asks loft to stop cleanly; from then on the default
	// handling is back, so a second one ends the process at once.
	context.AfterFunc(ctx, stop)
	code := cli.Run(ctx, os.Args, cli.OSEnv())
	stop()
	os.Exit(code)
}
