package node

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestEventsFromServe: another process's view of a serving repository (here
// a second Node on the same directory) follows the node's event stream:
// status snapshots, and the changes any process writes.
func TestEventsFromServe(t *testing.T) {
	s := startServing(t, "events")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	other, err := Open(ctx, s.n.Dir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var events <-chan Event
	for range 100 { // serve records where it listens within a second
		if events, err = other.Events(ctx); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	src := filepath.Join(t.TempDir(), "note.txt")
	if err := os.WriteFile(src, []byte("an event"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Put(ctx, []string{src}, PutOptions{}); err != nil {
		t.Fatal(err)
	}
	var sawStatus, sawChange bool
	for !sawStatus || !sawChange {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatal("event stream ended")
			}
			switch e.Kind {
			case "status":
				sawStatus = e.Status != nil && e.Status.Node.ID == s.n.ID().String()
			case "change":
				sawChange = sawChange || (e.Change != nil && e.Change.Op == "put" && e.Change.Name == "note.txt")
			}
		case <-ctx.Done():
			t.Fatalf("no status and put events in time (status %v, change %v)", sawStatus, sawChange)
		}
	}

	// Without a serving node, Events says so.
	alone, err := Init(ctx, filepath.Join(t.TempDir(), "alone"), InitOptions{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer alone.Close()
	if _, err := alone.Events(ctx); err != ErrNotServing {
		t.Fatalf("Events on a repository nobody serves: %v, want ErrNotServing", err)
	}
}
