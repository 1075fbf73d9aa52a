package cli

import (
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/loftstore/loft/gc"
	"github.com/loftstore/loft/node"
)

func (e *runEnv) checkCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "check",
		Usage: "verify the repository",
		Description: "Checks the catalog file, that every referenced chunk has a file of the right size,\n" +
			"reference counts against the versions, and finds chunk files no row names (orphans,\n" +
			"left by a crash: harmless, and removed by gc). --read-data also reads and verifies every\n" +
			"chunk. --repair rebuilds reference counts and removes orphans; it never removes anything\n" +
			"a version references. Exits with 4 when it found a problem it did not repair.",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "read-data", Usage: "read and verify every chunk"},
			&ucli.BoolFlag{Name: "repair", Usage: "rebuild reference counts and remove orphans"},
			jsonFlag(),
		},
		Action: func(c *ucli.Context) error {
			if c.Args().Present() {
				return usageErrorf("loft check [--read-data] [--repair]", "check takes no arguments")
			}
			n, err := e.openWith(c, false, node.Options{AllowBadKey: true})
			if err != nil {
				return err
			}
			defer n.Close()
			opts := gc.CheckOptions{ReadData: c.Bool("read-data"), Repair: c.Bool("repair")}
			if e.showProgress(c) && opts.ReadData {
				pl := newProgressLine(e.Stderr)
				defer pl.clear()
				opts.Progress = func(p gc.Progress) { pl.draw(fmt.Sprintf("check: read %d chunks", p.Done)) }
			}
			rep, err := n.Check(c.Context, opts)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				if err := e.writeJSON(rep); err != nil {
					return err
				}
			} else {
				for _, f := range rep.Findings {
					line := f.Kind
					if f.Chunk != "" {
						line += " " + f.Chunk
					}
					line += ": " + f.Detail
					if len(f.Users) > 0 {
						line += " (used by " + strings.Join(f.Users, ", ") + ")"
					}
					if f.Repaired {
						line += " [repaired]"
					} else if !f.Problem && f.Note != "" {
						line += " [" + f.Note + "]"
					}
					fmt.Fprintln(e.Stdout, line)
				}
				how := "checked"
				if rep.ReadData {
					how = "read and verified"
				}
				fmt.Fprintf(e.Stdout, "%s %s: %s\n", how, plural(rep.Chunks, "chunk", "chunks"), summary(rep))
			}
			if err := n.KeyError(); err != nil {
				return err // a repository problem: exit 6
			}
			if n := rep.Unrepaired(); n > 0 {
				return &problemsError{n: n}
			}
			return nil
		},
	}
}

func summary(r gc.Report) string {
	problems, repaired, leftovers, notes := 0, 0, 0, 0
	for _, f := range r.Findings {
		switch {
		case f.Repaired:
			repaired++
		case f.Problem:
			problems++
		case f.Kind == gc.KindOrphan:
			leftovers++
		default:
			notes++
		}
	}
	if problems == 0 && repaired == 0 && leftovers == 0 && notes == 0 {
		return "no problems"
	}
	s := fmt.Sprintf("%s, %d repaired, %s", plural(int64(problems), "problem", "problems"), repaired,
		plural(int64(leftovers), "harmless leftover", "harmless leftovers"))
	if notes > 0 {
		s += ", " + plural(int64(notes), "note", "notes")
	}
	return s
}
