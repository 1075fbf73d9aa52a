package node

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/loftstore/loft/names"
)

// TestServeAndCloseLeaveNoGoroutine: two nodes serve on loopback, pair,
// exchange changes, replicate, and one reads through the other; once each
// Serve has returned and each node is closed, no goroutine of theirs is
// left (the listener's, the peer loops', the connections', quic-go's).
func TestServeAndCloseLeaveNoGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	type served struct {
		n    *Node
		addr string
		stop func()
	}
	start := func(name string) served {
		n, err := Init(ctx, filepath.Join(t.TempDir(), name), InitOptions{}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range map[string]string{"heartbeat-interval": "100ms", "replicate-interval": "200ms"} {
			if err := n.ConfigSet(ctx, k, v); err != nil {
				t.Fatal(err)
			}
		}
		sctx, stop := context.WithCancel(ctx)
		ready, done := make(chan string, 1), make(chan error, 1)
		go func() {
			done <- n.Serve(sctx, ServeOptions{Listen: "127.0.0.1:0", Ready: func(a string) { ready <- a }})
		}()
		var addr string
		select {
		case addr = <-ready:
		case err := <-done:
			t.Fatalf("serve %s: %v", name, err)
		case <-ctx.Done():
			t.Fatalf("serve %s did not start", name)
		}
		return served{n, addr, func() {
			stop()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve %s: %v", name, err)
				}
			case <-ctx.Done():
				t.Errorf("serve %s did not return", name)
			}
			if err := n.Close(); err != nil {
				t.Errorf("close %s: %v", name, err)
			}
		}}
	}
	a, b := start("a"), start("b")
	inv, err := a.n.Invite(ctx, []string{a.addr}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.n.Join(ctx, inv.String(), []string{b.addr}); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(src, make([]byte, 3<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := a.n.Put(ctx, []string{src}, PutOptions{}); err != nil {
		t.Fatal(err)
	}
	// B receives the change and a copy of the chunks.
	for {
		st, err := b.n.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.n.Versions(ctx, names.Must("f")); err == nil && st.Node.Chunks > 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("B did not receive f in time")
		case <-time.After(50 * time.Millisecond):
		}
	}
	// A read through the other node, as --node does.
	r, err := b.n.Remote(ctx, a.n.ID().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Versions(ctx, names.Must("f")); err != nil {
		t.Fatal(err)
	}
	a.stop()
	b.stop()
}
