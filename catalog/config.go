package catalog

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/loftstore/loft/store"

	"github.com/loftstore/loft/fault"
)

// Setting describes one repository setting kept in the catalog.
type Setting struct {
	Key     string
	Default string
	Help    string
	check   func(string) error
}

// Settings lists every setting `loft config` accepts.
func Settings() []Setting {
	return []Setting{
		{Key: "keep-versions", Default: "10", Help: "versions kept per object, tombstones included (at least 1)", check: func(v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return fmt.Errorf("want a whole number of at least 1, not %q", v)
			}
			return nil
		}},
		{Key: "gc-grace", Default: "24h", Help: "how long unreferenced data waits before gc removes it", check: duration},
		{Key: "replicas", Default: "2", Help: "copies of every chunk the cluster keeps (capped by the number of storage nodes)", check: func(v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 16 {
				return fmt.Errorf("want a whole number from 1 to 16, not %q", v)
			}
			return nil
		}},
		{Key: "peer-grace", Default: "1h", Help: "how long a peer may be offline before its chunks are copied elsewhere", check: duration},
		{Key: "heartbeat-interval", Default: "2s", Help: "how often serve exchanges heartbeats and changes with each peer", check: positive},
		{Key: "replicate-interval", Default: "10s", Help: "how often serve looks for chunks below their replica count", check: positive},
		{Key: "repair-interval", Default: "10m", Help: "how often serve asks peers to confirm the copies they hold, so lost ones are made again", check: positive},
		{Key: "scrub-interval", Default: "24h", Help: "how often serve re-reads every chunk it holds and repairs bad ones", check: positive},
		{Key: "gc-interval", Default: "1h", Help: "how often serve collects garbage", check: positive},
		{Key: "listen", Default: "0.0.0.0:7419", Help: "UDP address serve listens on"},
		{Key: "s3-listen", Default: "", Help: "TCP address serve answers S3 requests on, HOST:PORT (empty: no S3 gateway)"},
		{Key: "multipart-expiry", Default: "24h", Help: "how long an S3 multipart upload may receive no part before serve aborts it", check: positive},
		{Key: "small-chunk-max", Default: strconv.Itoa(store.SmallMax), Help: "largest stored chunk kept as a row of chunks/small.db rather than a file (0: every chunk a file)", check: func(v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 1<<20 {
				return fmt.Errorf("want a byte count from 0 to 1048576, not %q", v)
			}
			return nil
		}},
		{Key: "name", Default: "", Help: "this node's display name"},
		{Key: "default-node", Default: "", Help: "peer that --node means when given no value (for a laptop that uses a home server)"},
	}
}

func duration(v string) error {
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return fmt.Errorf("want a duration such as 24h or 30m, not %q", v)
	}
	return nil
}

func positive(v string) error {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return fmt.Errorf("want a positive duration such as 10s or 1h, not %q", v)
	}
	return nil
}

// Duration returns a duration setting.
func (c *Catalog) Duration(ctx context.Context, key string) (time.Duration, error) {
	v, err := c.Config(ctx, key)
	if err != nil {
		return 0, err
	}
	return time.ParseDuration(v)
}

// ErrBadSetting means an unknown setting or a value it does not accept.
var ErrBadSetting = fault.New(fault.Invalid, "bad setting")

func setting(key string) (Setting, error) {
	for _, s := range Settings() {
		if s.Key == key {
			return s, nil
		}
	}
	return Setting{}, fmt.Errorf("%w: unknown setting %q", ErrBadSetting, key)
}

// Config returns the value of a setting, or its default when unset.
func (c *Catalog) Config(ctx context.Context, key string) (string, error) {
	s, err := setting(key)
	if err != nil {
		return "", err
	}
	v, err := c.Meta(ctx, "config."+key)
	if err != nil || v == "" {
		return s.Default, err
	}
	return v, nil
}

// ConfigAll returns every setting with its current value, sorted by key.
func (c *Catalog) ConfigAll(ctx context.Context) (map[string]string, []string, error) {
	vals := make(map[string]string)
	var keys []string
	for _, s := range Settings() {
		v, err := c.Config(ctx, s.Key)
		if err != nil {
			return nil, nil, err
		}
		vals[s.Key] = v
		keys = append(keys, s.Key)
	}
	sort.Strings(keys)
	return vals, keys, nil
}

// SetConfig validates and stores a setting.
func (tx *Tx) SetConfig(ctx context.Context, key, value string) error {
	s, err := setting(key)
	if err != nil {
		return err
	}
	if s.check == nil {
		s.check = func(string) error { return nil }
	}
	if err := s.check(value); err != nil {
		return fmt.Errorf("%w %s: %v", ErrBadSetting, key, err)
	}
	if _, err := tx.logChange(ctx, "config", "", 0, key+"="+value, nil); err != nil {
		return err
	}
	tx.keep = 0 // read again if this transaction prunes
	return tx.SetMeta(ctx, "config."+key, value)
}

func (tx *Tx) keepVersions(ctx context.Context) (int, error) {
	if tx.keep > 0 {
		return tx.keep, nil
	}
	v, err := tx.Meta(ctx, "config.keep-versions")
	if err != nil {
		return 0, err
	}
	if v == "" {
		s, _ := setting("keep-versions")
		v = s.Default
	}
	tx.keep, err = strconv.Atoi(v)
	return tx.keep, err
}

// GCGrace returns the configured grace period.
func (c *Catalog) GCGrace(ctx context.Context) (time.Duration, error) {
	v, err := c.Config(ctx, "gc-grace")
	if err != nil {
		return 0, err
	}
	return time.ParseDuration(v)
}
