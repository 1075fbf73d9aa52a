package cli

import (
	"fmt"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"
)

func (e *runEnv) statCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "stat",
		Usage: "show repository totals: objects, bytes, deduplication, garbage",
		Flags: []ucli.Flag{jsonFlag()},
		Action: func(c *ucli.Context) error {
			if c.Args().Present() {
				return usageErrorf("loft stat", "stat takes no arguments")
			}
			n, err := e.target(c, false)
			if err != nil {
				return err
			}
			defer n.Close()
			s, err := n.Stat(c.Context)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return e.writeJSON(s)
			}
			tw := tabwriter.NewWriter(e.Stdout, 0, 8, 2, ' ', 0)
			row := func(k, f string, a ...any) { fmt.Fprintf(tw, "%s\t"+f+"\n", append([]any{k}, a...)...) }
			row("repository", "%s", s.Dir)
			row("node id", "%s", s.NodeID)
			row("chunking", "%s", s.Chunking)
			row("objects", "%d (%d deleted)", s.Objects, s.DeletedObjects)
			row("versions", "%d", s.Versions)
			row("live bytes", "%s in the newest versions", bytes(s.LiveBytes))
			row("logical bytes", "%s in all versions kept", bytes(s.LogicalBytes))
			row("stored bytes", "%s in %d chunks (%s before compression)", bytes(s.StoredBytes), s.Chunks, bytes(s.PlainBytes))
			row("dedup ratio", "%.2fx", s.DedupRatio)
			row("compression", "%.2fx", s.Compression)
			row("garbage pending", "%s in %s, %s reclaimable now (grace %s)", bytes(s.Garbage.Bytes),
				plural(s.Garbage.Chunks, "chunk", "chunks"), bytes(s.Garbage.ReclaimBytes), s.Grace)
			return tw.Flush()
		},
	}
}
