package cli

import (
	"fmt"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/loftstore/loft/gc"
	"github.com/loftstore/loft/node"
)

func (e *runEnv) gcCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "gc",
		Usage: "remove data no version references any more",
		Description: "Removes chunks that have been unreferenced for longer than the grace period (the\n" +
			"gc-grace setting, 24h unless changed), chunk files no catalog row names (left by a crash)\n" +
			"and stale temporary files. Puts keep running while it works.",
		Flags: []ucli.Flag{
			&ucli.DurationFlag{Name: "grace", Value: -1, DefaultText: "the gc-grace setting", Usage: "remove only what has been unreferenced for this long"},
			&ucli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "show what would be removed, remove nothing"},
			jsonFlag(),
		},
		Action: func(c *ucli.Context) error {
			if c.Args().Present() {
				return usageErrorf("loft gc [--grace DURATION] [--dry-run]", "gc takes no arguments")
			}
			if c.IsSet("grace") && c.Duration("grace") < 0 {
				return usageErrorf("loft gc --grace 24h", "--grace must not be negative")
			}
			n, err := e.open(c, false)
			if err != nil {
				return err
			}
			defer n.Close()
			opts := node.GCOptions{Grace: c.Duration("grace"), DryRun: c.Bool("dry-run")}
			if e.showProgress(c) {
				pl := newProgressLine(e.Stderr)
				defer pl.clear()
				opts.Progress = func(p gc.Progress) { pl.draw(fmt.Sprintf("gc: %s %d", p.Phase, p.Done)) }
			}
			r, err := n.GC(c.Context, opts)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return e.writeJSON(r)
			}
			verb := "removed"
			if r.DryRun {
				verb = "would remove"
			}
			fmt.Fprintf(e.Stdout, "%s %s (%s) and %s (%s); grace %s\n", verb,
				plural(r.Chunks, "unreferenced chunk", "unreferenced chunks"), bytes(r.Bytes),
				plural(r.Orphans, "orphan file", "orphan files"), bytes(r.OrphanBytes), r.Grace)
			if r.Pending.Chunks > 0 && !r.DryRun {
				fmt.Fprintf(e.Stdout, "still pending: %s in %s, unreferenced since %s\n", bytes(r.Pending.Bytes),
					plural(r.Pending.Chunks, "chunk", "chunks"), r.Pending.Oldest.Local().Format(time.DateTime))
			}
			if r.Sessions > 0 {
				fmt.Fprintf(e.Stdout, "%s running: data it may still use was kept\n", plural(int64(r.Sessions), "write", "writes"))
			}
			return nil
		},
	}
}
