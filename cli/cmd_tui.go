package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/gc"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/node"
	"github.com/loftstore/loft/transfer"
	"github.com/loftstore/loft/tui"
)

var _ tui.Backend = (*node.Node)(nil)

func (e *runEnv) tuiCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "tui",
		Usage: "open the dashboard: files, replication health, transfers and gc",
		Description: "A full-screen dashboard on the repository (--repo, --node as for other commands).\n" +
			"When a node serves the repository it follows that node live; otherwise it reads the\n" +
			"repository directly and says so. Logs go to tui.log in the repository while it runs.",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "log", Usage: "log file (default: tui.log in the repository directory)"},
		},
		Action: func(c *ucli.Context) error {
			dir, _, err := e.repoDir(c)
			if err != nil {
				return err
			}
			logPath := c.String("log")
			if logPath == "" {
				logPath = filepath.Join(dir, "tui.log")
			}
			lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
			if err != nil {
				return fmt.Errorf("tui: log file: %w", err)
			}
			defer lf.Close()
			// Nothing may write to the terminal behind the dashboard: this
			// process's logs, quic-go's included, go to the file.
			e.log = slog.New(slog.NewTextHandler(lf, &slog.HandlerOptions{Level: slog.LevelInfo}))
			slog.SetDefault(e.log)
			n, err := e.open(c, true)
			if err != nil {
				return err
			}
			defer n.Close()
			var b tui.Backend = n
			if ref, remote := e.nodeRef(c); remote {
				r, err := n.Remote(c.Context, ref)
				if err != nil {
					return err
				}
				b = remoteBackend{r}
			}
			return tui.Run(c.Context, b, tui.Options{In: e.Stdin, Out: e.Stdout, InviteAddrs: inviteAddrs(c.Context, n)})
		},
	}
}

// inviteAddrs are the addresses an invite made in the dashboard carries:
// where the serving node listens, or the listen setting if it names one.
func inviteAddrs(ctx context.Context, n *node.Node) []string {
	if addrs := n.ServingAddrs(ctx); len(addrs) > 0 {
		return addrs
	}
	l, err := n.ConfigGet(ctx, "listen")
	if err != nil || strings.HasPrefix(l, "0.0.0.0:") || strings.HasPrefix(l, "[::]:") {
		return nil
	}
	return []string{l}
}

// remoteBackend shows a peer's repository (--node): what the protocol
// offers; the rest is this node's own business.
type remoteBackend struct{ *node.Remote }

var errLocalOnly = fault.New(fault.Invalid, "not available over --node: run the dashboard on that node")

func (r remoteBackend) Copies(ctx context.Context, name names.Name) (int, error) {
	return -1, errLocalOnly
}
func (r remoteBackend) GC(ctx context.Context, opts node.GCOptions) (gc.Result, error) {
	return gc.Result{}, errLocalOnly
}
func (r remoteBackend) GCRuns(ctx context.Context, limit int) ([]catalog.GCRun, error) {
	return nil, nil
}
func (r remoteBackend) LastChanges(ctx context.Context, limit int) ([]catalog.Change, error) {
	return nil, nil
}
func (r remoteBackend) Changes(ctx context.Context, after int64, limit int) ([]catalog.Change, error) {
	return nil, nil
}
func (r remoteBackend) Invite(ctx context.Context, addrs []string, ttl time.Duration) (transfer.Invite, error) {
	return transfer.Invite{}, errLocalOnly
}
func (r remoteBackend) RemovePeer(ctx context.Context, ref string) error { return errLocalOnly }
func (r remoteBackend) Events(ctx context.Context) (<-chan node.Event, error) {
	return nil, node.ErrNotServing
}
