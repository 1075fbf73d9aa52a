// Package cli is loft's command line: urfave/cli/v2 commands that turn flags
// into an options struct, call one node operation and render the result as
// text or JSON. Output goes to the writers in Env, so tests capture it.
package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	ucli "github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// version is set at build time by the Makefile (-ldflags -X).
var version = "dev"

// Env is what the command line needs from the process.
type Env struct {
	Stdin      io.Reader
	Stdout     io.Writer
	Stderr     io.Writer
	Getenv     func(string) string
	IsTerminal func(w io.Writer) bool
}

// OSEnv returns the Env of this process: its standard streams and
// environment, with terminals detected on the file descriptors.
func OSEnv() Env {
	return Env{
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		Getenv: os.Getenv,
		IsTerminal: func(w io.Writer) bool {
			f, ok := w.(*os.File)
			return ok && term.IsTerminal(int(f.Fd()))
		},
	}
}

// Run runs the command line and returns the process exit code.
func Run(ctx context.Context, args []string, env Env) int {
	e := &runEnv{Env: env}
	app := e.app()
	args, err := reorderArgs(app, args)
	if err == nil {
		err = app.RunContext(ctx, args)
	}
	return e.report(err)
}

// runEnv carries the process environment and the global flags to commands.
type runEnv struct {
	Env
	log *slog.Logger
	// json is set when the command runs with --json; wroteJSON once it
	// printed its result.
	json, wroteJSON bool
}

func (e *runEnv) app() *ucli.App {
	app := &ucli.App{
		Name:      "loft",
		Usage:     "a personal storage appliance: chunked, deduplicated, versioned storage",
		Version:   version,
		Reader:    e.Stdin,
		Writer:    e.Stdout,
		ErrWriter: e.Stderr,
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "repo", Usage: "repository directory (default $XDG_DATA_HOME/loft or ~/.local/share/loft)", EnvVars: []string{"LOFT_REPO"}},
			&ucli.StringFlag{Name: "log-level", Value: "warn", Usage: "log level: debug, info, warn or error", EnvVars: []string{"LOFT_LOG_LEVEL"}},
			&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress display"},
			&ucli.StringFlag{Name: "node", Usage: "work on a paired peer's repository: its ID, ID prefix or name (\"default\": the default-node setting)", EnvVars: []string{"LOFT_NODE"}},
		},
		Commands: []*ucli.Command{
			e.initCommand(), e.putCommand(), e.getCommand(), e.lsCommand(), e.versionsCommand(),
			e.rmCommand(), e.restoreCommand(), e.statCommand(), e.gcCommand(), e.checkCommand(),
			e.configCommand(), e.versionCommand(), e.idCommand(), e.inviteCommand(), e.joinCommand(),
			e.peerCommand(), e.serveCommand(), e.statusCommand(), e.tuiCommand(), e.snapshotsCommand(), e.forgetCommand(),
			e.keyCommand(), e.bucketCommand(),
		},
		HideVersion:          true,
		EnableBashCompletion: false,
		ExitErrHandler:       func(*ucli.Context, error) {}, // exit codes are ours: see report
		OnUsageError: func(c *ucli.Context, err error, _ bool) error {
			return usageErrorf("loft --help", "%v", err)
		},
		Before: func(c *ucli.Context) error {
			level := c.String("log-level")
			if level == "" {
				level = "warn" // LOFT_LOG_LEVEL set but empty
			}
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(level)); err != nil {
				return usageErrorf("loft --log-level warn", "bad log level %q", c.String("log-level"))
			}
			e.log = slog.New(slog.NewTextHandler(e.Stderr, &slog.HandlerOptions{Level: lvl}))
			// Libraries that log through the standard log package (quic-go
			// warns there about UDP buffer sizes) go through ours, with its
			// level and format, instead of writing bare lines to stderr.
			slog.SetDefault(e.log)
			return nil
		},
		Action: func(c *ucli.Context) error {
			if c.Args().Present() {
				return usageErrorf("loft --help", "unknown command %q", c.Args().First())
			}
			return ucli.ShowAppHelp(c)
		},
	}
	for _, cmd := range app.Commands {
		e.noteJSON(cmd)
	}
	remote := map[string]bool{"put": true, "get": true, "ls": true, "versions": true, "rm": true, "restore": true, "stat": true, "status": true, "tui": true}
	for _, cmd := range app.Commands {
		cmd.OnUsageError = func(c *ucli.Context, err error, _ bool) error {
			return usageErrorf("loft "+cmd.Name+" --help", "%v", err)
		}
		if !remote[cmd.Name] {
			// --node on the command line of a command that works only on
			// this repository is a mistake (config set on the laptop instead
			// of the server); LOFT_NODE in the environment is a default for
			// the commands that take it.
			cmd.Before = func(c *ucli.Context) error {
				if c.String("node") != "" && e.Getenv("LOFT_NODE") == "" {
					return usageErrorf("loft "+cmd.Name+" --help", "--node does not apply to %s: it works on this node's repository", cmd.Name)
				}
				return nil
			}
		}
	}
	return app
}

// noteJSON makes cmd and its subcommands record --json before they run.
func (e *runEnv) noteJSON(cmd *ucli.Command) {
	if action := cmd.Action; action != nil {
		cmd.Action = func(c *ucli.Context) error {
			e.json = c.Bool("json")
			return action(c)
		}
	}
	for _, sub := range cmd.Subcommands {
		e.noteJSON(sub)
	}
}

// repoDir returns the repository directory and whether it is the default
// one, which the first write creates.
func (e *runEnv) repoDir(c *ucli.Context) (string, bool, error) {
	if r := c.String("repo"); r != "" {
		return r, false, nil
	}
	if d := e.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "loft"), true, nil
	}
	home := e.Getenv("HOME")
	if home == "" {
		return "", false, usageErrorf("loft --repo DIR", "no repository given and HOME is not set")
	}
	return filepath.Join(home, ".local", "share", "loft"), true, nil
}

// jsonFlag is the --json flag every command that prints data has.
func jsonFlag() ucli.Flag {
	return &ucli.BoolFlag{Name: "json", Usage: "print the result as JSON"}
}

// reorderArgs moves a command's flags that follow its arguments in front of
// them, so that `loft put FILE --as NAME` works: urfave/cli v2 stops parsing
// flags at the first argument. The arguments then follow a "--", so that
// ones starting with a dash stay arguments; an explicit "--" ends the flags
// as usual. A value flag with no value after it is a usage error here,
// before it could take an argument as its value.
func reorderArgs(app *ucli.App, args []string) ([]string, error) {
	if len(args) < 2 {
		return args, nil
	}
	out := []string{args[0]}
	i := 1
	// Global flags come before the command name.
	for i < len(args) && isFlag(args[i]) {
		out = append(out, args[i])
		if takesValue(app.Flags, args[i]) {
			if i+1 >= len(args) {
				return nil, usageErrorf("loft --help", "flag needs an argument: -%s", strings.TrimLeft(args[i], "-"))
			}
			i++
			out = append(out, args[i])
		}
		i++
	}
	if i >= len(args) {
		return out, nil
	}
	name := args[i]
	cmd := app.Command(name)
	i++
	if cmd == nil {
		return append(append(out, name), args[i:]...), nil
	}
	path := []string{name}
	for i < len(args) && len(cmd.Subcommands) > 0 {
		sub := cmd.Command(args[i])
		if sub == nil {
			break
		}
		path, cmd = append(path, args[i]), sub
		i++
	}
	// After the command: its own flags go right behind it, global flags
	// (loft put FILE --quiet) in front of it, arguments last.
	var cmdFlags, pos []string
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !isFlag(a) {
			pos = append(pos, a)
			continue
		}
		flags, dst := cmd.Flags, &cmdFlags
		if !hasFlag(cmd.Flags, a) && hasFlag(app.Flags, a) {
			flags, dst = app.Flags, &out
		}
		*dst = append(*dst, a)
		if takesValue(flags, a) {
			if i+1 >= len(args) {
				return nil, usageErrorf("loft "+cmd.Name+" --help", "flag needs an argument: -%s", strings.TrimLeft(a, "-"))
			}
			i++
			*dst = append(*dst, args[i])
		}
	}
	out = append(append(out, path...), cmdFlags...)
	if len(pos) > 0 {
		out = append(append(out, "--"), pos...)
	}
	return out, nil
}

// hasFlag reports whether arg names one of flags.
func hasFlag(flags []ucli.Flag, arg string) bool {
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	for _, f := range flags {
		if slices.Contains(f.Names(), name) {
			return true
		}
	}
	return false
}

// isFlag reports whether a command-line word is a flag ("-" alone is
// standard input, "--" ends the flags).
func isFlag(a string) bool { return strings.HasPrefix(a, "-") && a != "-" && a != "--" }

// takesValue reports whether arg is a flag of flags that takes a value in
// the next word (not given inline as --flag=value).
func takesValue(flags []ucli.Flag, arg string) bool {
	if strings.Contains(arg, "=") {
		return false
	}
	name := strings.TrimLeft(arg, "-")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				if tv, ok := f.(interface{ TakesValue() bool }); ok {
					return tv.TakesValue()
				}
				return false
			}
		}
	}
	return false
}

// warnf prints a warning line on stderr.
func (e *runEnv) warnf(format string, args ...any) {
	fmt.Fprintf(e.Stderr, "loft: warning: "+format+"\n", args...)
}

// stderrIsTerminal reports whether progress may be drawn.
func (e *runEnv) showProgress(c *ucli.Context) bool {
	return !c.Bool("quiet") && !c.Bool("json") && e.IsTerminal != nil && e.IsTerminal(e.Stderr)
}
