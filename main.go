// Command loft is a personal storage appliance: chunked, deduplicated,
// versioned storage on each of a few machines. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/loftstore/loft/cli"
)

func main() { os.Exit(run()) }

func run() int {
	// A soft memory target keeps the heap small on small machines; the put
	// and get pipelines bound their live data below it (~28 MiB at most:
	// chunk budget, two chunker windows, the zstd encoders). Peak RSS is
	// this target plus ~8 MB of SQLite caches plus ~17 MB of the binary's
	// pages. At 36 MiB a put of the Go tree peaked at 58-61 MB (at 48 MiB,
	// 78 MB) for the same time; a 1 GiB put spent ~3% more CPU.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(36 << 20)
	}
	// LOFT_CPUPROFILE names a file for a CPU profile of this run (pprof
	// format), for performance work on the real binary.
	if path := os.Getenv("LOFT_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil && pprof.StartCPUProfile(f) == nil {
			defer f.Close()
			defer pprof.StopCPUProfile()
		}
	}
	// LOFT_MEMPROFILE names a file for the allocation profile of this run,
	// written as it ends: where the heap churn that drives the collector is.
	if path := os.Getenv("LOFT_MEMPROFILE"); path != "" {
		defer func() {
			if f, err := os.Create(path); err == nil {
				defer f.Close()
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
			}
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal asks loft to stop cleanly; from then on the default
	// handling is back, so a second one ends the process at once.
	context.AfterFunc(ctx, stop)
	return cli.Run(ctx, os.Args, cli.OSEnv())
}
