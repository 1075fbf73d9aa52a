package cli

import (
	"encoding/json"
	"fmt"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/node"
	"github.com/loftstore/loft/s3"
)

func (e *runEnv) idCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "id",
		Usage: "print this node's ID",
		Flags: []ucli.Flag{jsonFlag()},
		Action: func(c *ucli.Context) error {
			n, err := e.open(c, true)
			if err != nil {
				return err
			}
			defer n.Close()
			id := n.ID()
			if c.Bool("json") {
				return e.writeJSON(map[string]string{"id": id.String(), "short": id.Short()})
			}
			_, err = fmt.Fprintln(e.Stdout, id.String())
			return err
		},
	}
}

func (e *runEnv) inviteCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "invite",
		Usage: "print a single-use token that pairs another node with this one",
		Description: "The token holds this node's ID, the addresses to dial and a secret; it works once,\n" +
			"until it expires. Run `loft join TOKEN` on the other node while this one serves.",
		Flags: []ucli.Flag{
			&ucli.StringSliceFlag{Name: "addr", Usage: "address the other node dials, HOST:PORT (repeatable; default: the listen setting)"},
			&ucli.DurationFlag{Name: "ttl", Value: time.Hour, Usage: "how long the token stays valid"},
			jsonFlag(),
		},
		Action: func(c *ucli.Context) error {
			n, err := e.open(c, true)
			if err != nil {
				return err
			}
			defer n.Close()
			addrs := c.StringSlice("addr")
			if len(addrs) == 0 {
				l, err := n.ConfigGet(c.Context, "listen")
				if err != nil {
					return err
				}
				if strings.HasPrefix(l, "0.0.0.0:") || strings.HasPrefix(l, "[::]:") {
					return usageErrorf("loft invite --addr HOST:PORT", "the listen setting %s is no address to dial: give --addr", l)
				}
				addrs = []string{l}
			}
			inv, err := n.Invite(c.Context, addrs, c.Duration("ttl"))
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return e.writeJSON(map[string]any{"token": inv.String(), "expires": inv.Expires, "addrs": inv.Addrs})
			}
			_, err = fmt.Fprintln(e.Stdout, inv.String())
			return err
		},
	}
}

func (e *runEnv) joinCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "join",
		Usage:     "pair with the node that printed TOKEN",
		ArgsUsage: "TOKEN",
		Flags: []ucli.Flag{
			&ucli.StringSliceFlag{Name: "addr", Usage: "address of this node the other may dial back, HOST:PORT (repeatable)"},
			jsonFlag(),
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return usageErrorf("loft join TOKEN", "join takes one TOKEN")
			}
			n, err := e.open(c, true)
			if err != nil {
				return err
			}
			defer n.Close()
			res, err := n.Join(c.Context, c.Args().First(), c.StringSlice("addr"))
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return e.writeJSON(res)
			}
			_, err = fmt.Fprintf(e.Stdout, "paired with %s %s\n", res.Peer, res.Name)
			return err
		},
	}
}

func (e *runEnv) peerCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "peer",
		Usage: "list, add and remove paired peers",
		Subcommands: []*ucli.Command{
			{
				Name:      "add",
				Usage:     "pin a peer by ID and addresses (both nodes must add each other; a node that only dials out needs no address)",
				ArgsUsage: "ID [ADDR...]",
				Flags:     []ucli.Flag{&ucli.StringFlag{Name: "name", Usage: "display name"}},
				Action: func(c *ucli.Context) error {
					if c.NArg() < 1 {
						return usageErrorf("loft peer add ID HOST:PORT", "peer add takes an ID and its addresses")
					}
					n, err := e.open(c, true)
					if err != nil {
						return err
					}
					defer n.Close()
					return n.AddPeer(c.Context, catalog.Peer{ID: c.Args().First(), Name: c.String("name"), Addrs: c.Args().Tail()})
				},
			},
			{
				Name:  "ls",
				Usage: "list paired peers",
				Flags: []ucli.Flag{jsonFlag()},
				Action: func(c *ucli.Context) error {
					n, err := e.open(c, false)
					if err != nil {
						return err
					}
					defer n.Close()
					st, err := n.Status(c.Context)
					if err != nil {
						return err
					}
					if c.Bool("json") {
						return e.writeJSON(st.Peers)
					}
					return e.peerTable(st.Peers)
				},
			},
			{
				Name:      "rm",
				Usage:     "unpin a peer",
				ArgsUsage: "ID",
				Action: func(c *ucli.Context) error {
					if c.NArg() != 1 {
						return usageErrorf("loft peer rm ID", "peer rm takes one ID")
					}
					n, err := e.open(c, false)
					if err != nil {
						return err
					}
					defer n.Close()
					return n.RemovePeer(c.Context, c.Args().First())
				},
			},
		},
	}
}

func (e *runEnv) peerTable(peers []node.PeerStatus) error {
	tw := tabwriter.NewWriter(e.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tROLE\tSTATE\tLAST SEEN\tRTT\tCHUNKS\tFREE\tADDRESSES")
	for _, p := range peers {
		seen := "never"
		if !p.LastSeen.IsZero() {
			seen = when(p.LastSeen)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", p.ID[:8], p.Name, p.Role, p.State, seen,
			p.RTT.Round(time.Microsecond*10), p.Chunks, bytes(p.Free), strings.Join(p.Addrs, ","))
	}
	return tw.Flush()
}

// serveMemoryLimit is serve's soft memory target (a command's is 36 MiB too, set
// in main): with the binary's own pages it keeps serve's RSS under 64 MiB.
// With the S3 gateway on, up to s3.DefaultIngest request bodies are stored
// at once, each a put with its chunk budget and chunker window (~14 MiB):
// their live data alone passes 36 MiB and the collector ran without pause
// (an awscli upload of 1 GiB took 13.9 s of serve's CPU at 36 MiB, 10.6 s
// at 64 MiB, peak RSS 71 and 88 MB).
const (
	serveMemoryLimit   = 36 << 20
	serveS3MemoryLimit = 64 << 20
)

func (e *runEnv) serveCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "serve",
		Usage: "run the node: serve peers, replicate, repair, scrub and collect garbage",
		Description: "Runs until SIGINT or SIGTERM. Logs go to standard error (--log-level info shows\n" +
			"peers coming and going). Other loft commands keep working on the repository meanwhile.",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "listen", Usage: "UDP address to listen on (default: the listen setting)"},
			&ucli.StringSliceFlag{Name: "advertise", Usage: "address peers should dial, HOST:PORT (repeatable)"},
			&ucli.StringFlag{Name: "s3", Usage: "serve S3 on TCP `ADDR` too, HOST:PORT (default: the s3-listen setting; empty: off)"},
			&ucli.StringFlag{Name: "s3-cert", Usage: "serve S3 over HTTPS with this certificate `FILE` (PEM)"},
			&ucli.StringFlag{Name: "s3-key", Usage: "the private key `FILE` of --s3-cert (PEM)"},
		},
		Action: func(c *ucli.Context) error {
			// A serving node runs for months beside other programs: its soft
			// memory target is lower than a command's, unless set by hand.
			n, err := e.open(c, true)
			if err != nil {
				return err
			}
			defer n.Close()
			s3addr := c.String("s3")
			if !c.IsSet("s3") {
				if s3addr, err = n.ConfigGet(c.Context, "s3-listen"); err != nil {
					return err
				}
			}
			if e.Getenv("GOMEMLIMIT") == "" {
				limit := int64(serveMemoryLimit)
				if s3addr != "" {
					limit = serveS3MemoryLimit
				}
				debug.SetMemoryLimit(limit)
			}
			g, ctx := errgroup.WithContext(c.Context)
			g.Go(func() error {
				return n.Serve(ctx, node.ServeOptions{Listen: c.String("listen"), Advertise: c.StringSlice("advertise"),
					Ready: func(addr string) { fmt.Fprintf(e.Stdout, "serving %s on %s\n", n.ID(), addr) }})
			})
			if s3addr != "" {
				gw := s3.New(n, s3.Options{Log: e.log})
				g.Go(func() error {
					return gw.Serve(ctx, s3.ServeOptions{Addr: s3addr, CertFile: c.String("s3-cert"), KeyFile: c.String("s3-key"),
						Ready: func(addr string) {
							since := time.Now()
							n.ReportService("s3", func() node.ServiceStatus {
								st := gw.Stats()
								return node.ServiceStatus{Name: "s3", Addr: addr, Since: since, Requests: st.Requests,
									Failed: st.Failed, BytesIn: st.BytesIn, BytesOut: st.BytesOut}
							})
							fmt.Fprintf(e.Stdout, "serving S3 on %s\n", addr)
						}})
				})
			}
			err = g.Wait()
			if err == nil && c.Context.Err() != nil {
				return c.Context.Err()
			}
			return err
		},
	}
}

// historyLines prints what a node refused from its peers and what happened
// to its history, when anything did.
func (e *runEnv) historyLines(h node.HistoryStatus) {
	if h.Quarantined > 0 {
		fmt.Fprintf(e.Stdout, "refused from peers: %s, quarantined (the newest below)\n", plural(h.Quarantined, "change", "changes"))
		for _, q := range h.Refused {
			fmt.Fprintf(e.Stdout, "  %s from %s: change %s/%d %s: %s\n", when(q.Last), display(q.Peer), display(q.Origin), q.OriginSeq,
				display(q.Name), display(q.Reason))
		}
	}
	for _, ev := range h.Recent {
		peer := ""
		if ev.Peer != "" {
			peer = " (peer " + display(ev.Peer[:min(8, len(ev.Peer))]) + ")"
		}
		fmt.Fprintf(e.Stdout, "history %s: %s%s %s\n", when(ev.At), catalog.DescribeHistory(ev.Kind), peer, display(string(ev.Detail)))
	}
}

func (e *runEnv) statusCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "status",
		Usage: "show this node, its peers, replication health and pending garbage",
		Flags: []ucli.Flag{jsonFlag()},
		Action: func(c *ucli.Context) error {
			n, err := e.open(c, false)
			if err != nil {
				return err
			}
			defer n.Close()
			var st node.Status
			if ref, remote := e.nodeRef(c); remote {
				r, err := n.Remote(c.Context, ref)
				if err != nil {
					return err
				}
				st, err = r.Status(c.Context)
				if err != nil {
					return err
				}
			} else if st, err = n.Status(c.Context); err != nil {
				return err
			}
			if c.Bool("json") {
				return e.writeJSON(st)
			}
			fmt.Fprintf(e.Stdout, "node %s %s: %s, %s stored, %s free\n", st.Node.ID, st.Node.Name,
				plural(st.Node.Chunks, "chunk", "chunks"), bytes(st.Node.Stored), bytes(st.Node.Free))
			if !st.Node.ReceivingPaused.IsZero() {
				fmt.Fprintf(e.Stdout, "disk full: receiving chunks from peers is paused since %s, until the disk has room\n", when(st.Node.ReceivingPaused))
			}
			r := st.Replication
			fmt.Fprintf(e.Stdout, "replication: %s wanted; %d of %s (%s) below, %d under repair here, %d not located\n",
				plural(int64(r.Replicas), "copy", "copies"), r.Below, plural(r.Chunks, "chunk", "chunks"), bytes(r.BelowBytes), r.UnderRepair, r.Unplaced)
			for _, name := range []string{"replicate", "repair", "scrub", "gc"} {
				if rec, ok := st.Loops[name]; ok {
					b, _ := json.Marshal(rec.Result)
					line := fmt.Sprintf("last %s: %s %s", name, when(rec.At), b)
					if rec.Error != "" {
						line += " error: " + rec.Error
					}
					fmt.Fprintln(e.Stdout, line)
				}
			}
			if t := st.Transfer; t != nil {
				fmt.Fprintf(e.Stdout, "transfer (serve, %s): sending %s/s, receiving %s/s; since start pushed %s, received %s, fetched %s, served %s\n",
					when(t.At), bytes(int64(t.SendRate)), bytes(int64(t.RecvRate)), bytes(t.PushedBytes), bytes(t.ReceivedBytes),
					bytes(t.FetchedBytes), bytes(t.ServedBytes))
			}
			for _, sv := range st.Services {
				fmt.Fprintf(e.Stdout, "%s on %s (since %s): %s (%d failed), %s in, %s out\n", sv.Name, sv.Addr, when(sv.Since),
					plural(sv.Requests, "request", "requests"), sv.Failed, bytes(sv.BytesIn), bytes(sv.BytesOut))
			}
			fmt.Fprintf(e.Stdout, "gc pending: %s, %s\n", plural(st.GC.Chunks, "chunk", "chunks"), bytes(st.GC.Bytes))
			e.historyLines(st.History)
			if len(st.Peers) == 0 {
				_, err := fmt.Fprintln(e.Stdout, "no peers (loft invite / loft join pair one)")
				return err
			}
			return e.peerTable(st.Peers)
		},
	}
}
