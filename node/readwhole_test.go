package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"golang.org/x/sync/semaphore"
)

// TestReadWhole covers the one-chunk read of a small file against what a
// file can do between its stat and its read: stay, shrink, grow, fail. In
// every case the budget comes back whole once the task is released.
func TestReadWhole(t *testing.T) {
	const budget = 1 << 20
	content := bytes.Repeat([]byte("0123456789abcdef"), 1000) // 16,000 bytes
	for _, tc := range []struct {
		name    string
		r       io.Reader
		size    int
		want    []byte // the task's data; nil: no task
		rest    []byte // what the reader for the chunker yields; nil: none
		readErr bool
	}{
		{name: "as stated", r: bytes.NewReader(content), size: len(content), want: content},
		{name: "in small reads", r: iotest.OneByteReader(bytes.NewReader(content)), size: len(content), want: content},
		{name: "shrunk", r: bytes.NewReader(content[:5000]), size: len(content), want: content[:5000]},
		{name: "emptied", r: bytes.NewReader(nil), size: len(content)},
		{name: "grown", r: bytes.NewReader(content), size: 6000, rest: content},
		{name: "grown by one byte", r: bytes.NewReader(content[:6001]), size: 6000, rest: content[:6001]},
		{name: "failed", r: io.MultiReader(bytes.NewReader(content[:100]), iotest.ErrReader(errors.New("disk gone"))), size: len(content), readErr: true},
		{name: "never delivers", r: emptyReader{}, size: len(content), readErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &putter{n: &Node{}, budget: semaphore.NewWeighted(budget)}
			ft := &fileTask{src: &source{path: "f"}}
			task, rest, err := p.readWhole(context.Background(), ft, tc.r, tc.size)
			if err != nil {
				t.Fatal(err)
			}
			if (ft.readErr != nil) != tc.readErr {
				t.Fatalf("read error %v, want one: %v", ft.readErr, tc.readErr)
			}
			switch {
			case tc.want == nil && task != nil:
				t.Fatalf("a task of %d bytes, want none", task.size)
			case tc.want != nil && (task == nil || !bytes.Equal(task.data, tc.want) || task.size != int64(len(tc.want))):
				t.Fatalf("task %+v, want %d bytes", task, len(tc.want))
			}
			if (rest != nil) != (tc.rest != nil) {
				t.Fatalf("reader for the chunker %v, want one: %v", rest != nil, tc.rest != nil)
			}
			if rest != nil {
				got, err := io.ReadAll(rest)
				if err != nil || !bytes.Equal(got, tc.rest) {
					t.Fatalf("the chunker would read %d bytes (%v), want %d", len(got), err, len(tc.rest))
				}
			}
			if task != nil {
				p.release(task)
			}
			if !p.budget.TryAcquire(budget) {
				t.Fatal("the budget did not come back whole")
			}
		})
	}
}

// emptyReader returns nothing and no error, forever.
type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }
