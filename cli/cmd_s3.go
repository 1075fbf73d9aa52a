package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/s3"
)

func (e *runEnv) keyCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "key",
		Usage: "manage the access keys of this node's S3 gateway",
		Subcommands: []*ucli.Command{
			{
				Name:      "create",
				Usage:     "make an access key; its secret is printed once",
				ArgsUsage: " ",
				Description: "Grants are BUCKET:read (list, get), BUCKET:write (and put, copy, delete) or\n" +
					"BUCKET:admin (and create and delete the bucket, set versioning); BUCKET may be * for all.\n" +
					"Example: loft key create --name laptop --bucket photos:write --bucket '*:read'",
				Flags: []ucli.Flag{
					&ucli.StringFlag{Name: "name", Usage: "a `NAME` to tell the key by"},
					&ucli.StringSliceFlag{Name: "bucket", Usage: "grant `BUCKET:ACCESS` (repeatable)"},
					jsonFlag(),
				},
				Action: func(c *ucli.Context) error {
					if c.NArg() > 0 {
						return usageErrorf("loft key create [--name N] [--bucket B:read|write|admin ...]", "key create takes no arguments")
					}
					var grants []catalog.Grant
					for _, s := range c.StringSlice("bucket") {
						g, err := s3.ParseGrant(s)
						if err != nil {
							return usageErrorf("loft key create --bucket photos:write", "%v", err)
						}
						grants = append(grants, g)
					}
					if len(grants) == 0 {
						return usageErrorf("loft key create --bucket photos:write", "give at least one --bucket BUCKET:ACCESS")
					}
					n, err := e.open(c, true)
					if err != nil {
						return err
					}
					defer n.Close()
					k := s3.NewKey(c.String("name"), grants, time.Now())
					if err := n.Catalog().AddKey(c.Context, k); err != nil {
						return err
					}
					if c.Bool("json") {
						return e.writeJSON(k)
					}
					fmt.Fprintf(e.Stdout, "access key: %s\nsecret key: %s\n", k.ID, k.Secret)
					fmt.Fprintln(e.Stdout, "the secret is shown only now: keep it")
					return nil
				},
			},
			{
				Name:  "ls",
				Usage: "list the access keys (never their secrets)",
				Flags: []ucli.Flag{jsonFlag()},
				Action: func(c *ucli.Context) error {
					n, err := e.open(c, false)
					if err != nil {
						return err
					}
					defer n.Close()
					ks, err := n.Catalog().Keys(c.Context)
					if err != nil {
						return err
					}
					if c.Bool("json") {
						return e.writeJSON(ks)
					}
					if len(ks) == 0 {
						fmt.Fprintln(e.Stdout, "no access keys (loft key create makes one)")
						return nil
					}
					tw := tabwriter.NewWriter(e.Stdout, 0, 8, 2, ' ', 0)
					fmt.Fprintln(tw, "KEY\tNAME\tCREATED\tGRANTS")
					for _, k := range ks {
						var gs []string
						for _, g := range k.Grants {
							gs = append(gs, g.Bucket+":"+string(g.Access))
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.ID, display(k.Name), k.Created.Local().Format(time.DateTime), strings.Join(gs, " "))
					}
					return tw.Flush()
				},
			},
			{
				Name:      "rm",
				Usage:     "delete access keys",
				ArgsUsage: "KEY...",
				Action: func(c *ucli.Context) error {
					if c.NArg() == 0 {
						return usageErrorf("loft key rm KEY...", "name at least one access key")
					}
					n, err := e.open(c, false)
					if err != nil {
						return err
					}
					defer n.Close()
					for _, id := range c.Args().Slice() {
						if err := n.Catalog().RemoveKey(c.Context, id); err != nil {
							return err
						}
						fmt.Fprintf(e.Stdout, "removed access key %s\n", id)
					}
					return nil
				},
			},
		},
	}
}

func (e *runEnv) bucketCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "bucket",
		Usage: "S3 bucket settings of this node",
		Subcommands: []*ucli.Command{
			{
				Name:      "policy",
				Usage:     "show or set who may read a bucket without a grant: private, public-read, authenticated-read",
				ArgsUsage: "BUCKET [POLICY]",
				Description: "private (the default): only keys granted the bucket. public-read: anyone, anonymous\n" +
					"requests too, may list and get. authenticated-read: any access key of this node may.",
				Flags: []ucli.Flag{jsonFlag()},
				Action: func(c *ucli.Context) error {
					if c.NArg() < 1 || c.NArg() > 2 {
						return usageErrorf("loft bucket policy BUCKET [private|public-read|authenticated-read]", "give a bucket and, to set it, a policy")
					}
					n, err := e.open(c, false)
					if err != nil {
						return err
					}
					defer n.Close()
					b, err := n.Catalog().Bucket(c.Context, c.Args().First())
					if err != nil {
						return err
					}
					if c.NArg() == 2 {
						b.Policy = catalog.Policy(c.Args().Get(1))
						if err := n.Catalog().SetBucket(c.Context, b); err != nil {
							return err
						}
					}
					if c.Bool("json") {
						return e.writeJSON(b)
					}
					fmt.Fprintf(e.Stdout, "%s: %s\n", b.Name, b.Policy)
					return nil
				},
			},
		},
	}
}
