package cli

import (
	"bufio"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/retention"
)

func (e *runEnv) forgetCommand() *ucli.Command {
	keep := func(name, what string) ucli.Flag {
		return &ucli.IntFlag{Name: "keep-" + name, Usage: what}
	}
	return &ucli.Command{
		Name:      "forget",
		Usage:     "drop snapshots and old versions a retention policy does not keep",
		ArgsUsage: "[PREFIX]",
		Description: "Applies the --keep rules, with restic's meaning, to the snapshots of PREFIX and below (each\n" +
			"prefix on its own) and to the versions of every object below PREFIX (by their creation\n" +
			"times). What no rule keeps is dropped; an object's newest version, and every version a kept\n" +
			"snapshot sees, always stay. The next gc reclaims the data (gc --grace 0s at once).\n" +
			"Dropped versions are forgotten on peers too. Periods are in the local time zone.",
		Flags: []ucli.Flag{
			keep("last", "keep the `N` newest"),
			keep("hourly", "keep the newest of each of the `N` newest hours that have one"),
			keep("daily", "... of the `N` newest days"),
			keep("weekly", "... of the `N` newest (ISO) weeks"),
			keep("monthly", "... of the `N` newest months"),
			keep("yearly", "... of the `N` newest years"),
			&ucli.DurationFlag{Name: "keep-within", Usage: "keep everything made within `DURATION` of the newest"},
			&ucli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "say what would be dropped, drop nothing"},
			jsonFlag(),
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() > 1 {
				return usageErrorf("loft forget [PREFIX] --keep-daily 7", "forget takes at most one PREFIX")
			}
			p := retention.Policy{Last: c.Int("keep-last"), Hourly: c.Int("keep-hourly"), Daily: c.Int("keep-daily"),
				Weekly: c.Int("keep-weekly"), Monthly: c.Int("keep-monthly"), Yearly: c.Int("keep-yearly"), Within: c.Duration("keep-within")}
			if p.Last < 0 || p.Hourly < 0 || p.Daily < 0 || p.Weekly < 0 || p.Monthly < 0 || p.Yearly < 0 || p.Within < 0 {
				return usageErrorf("loft forget [PREFIX] --keep-daily 7", "--keep rules take positive values")
			}
			if p.IsZero() {
				return usageErrorf("loft forget [PREFIX] --keep-daily 7", "forget needs at least one --keep rule (rm --purge drops everything)")
			}
			if _, remote := e.nodeRef(c); remote {
				return usageErrorf("loft forget [PREFIX] --keep-daily 7", "forget works on this node's repository, not with --node")
			}
			prefix, err := names.ParsePrefix(c.Args().First())
			if err != nil {
				return err
			}
			n, err := e.open(c, false)
			if err != nil {
				return err
			}
			defer n.Close()
			res, err := n.Forget(c.Context, prefix, p, c.Bool("dry-run"))
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return e.writeJSON(res)
			}
			would := ""
			if c.Bool("dry-run") {
				would = "would "
			}
			if len(res.Snapshots) > 0 {
				tw := tabwriter.NewWriter(e.Stdout, 0, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tTIME\tPREFIX\tDECISION")
				for _, s := range res.Snapshots {
					d := would + "drop"
					if s.Keep {
						d = "keep (" + strings.Join(s.Why, ", ") + ")"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.ID, s.At.Local().Format(time.DateTime), display(s.Prefix), d)
				}
				tw.Flush()
			}
			fmt.Fprintf(e.Stdout, "%skeep %s, %sdrop %s (%s); loft gc reclaims their data\n", would,
				plural(res.Kept, "version", "versions"), would, plural(res.Dropped, "version", "versions"), p)
			return nil
		},
	}
}

// confirm asks a yes/no question on the terminal; anything but y or yes
// is no.
func (e *runEnv) confirm(question string) bool {
	fmt.Fprintf(e.Stderr, "%s [y/N] ", question)
	line, _ := bufio.NewReader(e.Stdin).ReadString('\n')
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes"
}
