package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// remotePutJSON is the part of `loft put --node PEER --json` the bench reads.
type remotePutJSON struct {
	Bytes        int64 `json:"bytes"`
	BytesSent    int64 `json:"bytes_sent"`
	BytesSkipped int64 `json:"bytes_skipped"`
}

// rssTarget is the local appliance's memory bound, which a serving node
// (the same binary, on the same small machine) should keep too.
const rssTarget = 64 << 20

// peers measures nodes on loopback, each figure next to raw quic-go on one
// stream, measured in the same rounds: a remote put of new data and the
// same put again, replication to two peers, and a get whose chunks lie on
// one peer or on two; with the peak RSS of the serving nodes in each.
func (b *bench) peers(ctx context.Context, sz sizes, l *limits, st *e2eState) error {
	fmt.Printf("peers (nodes on loopback; medians of %d rounds):\n", rounds)
	dir := filepath.Join(b.dir, "peers")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// 1-3: the QUIC limit, interleaved with remote put and re-put.
	var lim, work, put, reput []float64
	var sent, reputSent, putRSS, reputRSS int64
	reset := true
	for r := range rounds {
		q, err := quicLimit(ctx, sz.big)
		if err != nil {
			return fmt.Errorf("quic limit: %w", err)
		}
		lim = append(lim, q)
		settle()
		qw, err := quicWorkLimit(ctx, sz.big, l.bigFile, dir)
		if err != nil {
			return fmt.Errorf("quic limit with the work: %w", err)
		}
		work = append(work, qw)
		res, err := b.remotePutRound(ctx, r, l.bigFile, sz.big)
		if err != nil {
			return fmt.Errorf("remote put: %w", err)
		}
		put, reput = append(put, res.rate), append(reput, res.reputRate)
		sent, reputSent = max(sent, res.sent), max(reputSent, res.reputSent)
		putRSS, reputRSS = max(putRSS, res.rss), max(reputRSS, res.reputRSS)
		reset = reset && res.reset
		fmt.Printf("  round %d: QUIC one stream %.0f MB/s, with the put's work %.0f MB/s, remote put %.0f MB/s (%s sent), re-put %.0f MB/s (%s sent)\n",
			r+1, q, qw, res.rate, human(res.sent), res.reputRate, human(res.reputSent))
	}
	q, pn := median(lim), median(put)
	quicLim := fmt.Sprintf("%.0f MB/s raw QUIC, one stream", q)
	b.add(row{name: "limit: quic-go, one stream on loopback, 1 MiB writes", value: fmt.Sprintf("%.0f MB/s", q)})
	qw := median(work)
	b.add(row{name: "limit: quic-go one stream + chunk, hash x3, write (derived)", value: fmt.Sprintf("%.0f MB/s", qw)})
	ratio := pn / q
	b.add(row{name: fmt.Sprintf("remote put %s new incompressible data", human(sz.big)),
		value: fmt.Sprintf("%.0f MB/s, %s sent", pn, human(sent)), limit: quicLim, target: ">= 70% of limit",
		verdict: verdict(ratio >= 0.70, fmt.Sprintf("%.0f%%", 100*ratio))})
	b.add(row{name: "  the same, against the ceiling with its work", value: fmt.Sprintf("%.0f MB/s", pn),
		limit: fmt.Sprintf("%.0f MB/s QUIC + chunk, hash, write", qw), target: "-",
		verdict: fmt.Sprintf("%.0f%% of that ceiling", 100*pn/qw)})
	share := float64(reputSent) / float64(sz.big)
	b.add(row{name: fmt.Sprintf("remote put the same %s again", human(sz.big)),
		value: fmt.Sprintf("%s sent (%.0f MB/s)", human(reputSent), median(reput)), limit: human(sz.big) + " file",
		target: "< 1% of size", verdict: verdict(share < 0.01, fmt.Sprintf("%.3f%%", 100*share))})
	b.addRSS("remote put", putRSS, reset, "1 node")
	b.addRSS("remote re-put", reputRSS, reset, "1 node")

	// 4: replication to two peers; the last round's cluster stays up for
	// the gets.
	var repl []float64
	var replRSS int64
	reset = true
	var holders []*server
	defer func() {
		for _, s := range holders {
			s.stop()
		}
	}()
	for r := range rounds {
		res, err := b.replicationRound(ctx, r, l.bigFile, sz.big, r == rounds-1)
		if err != nil {
			return fmt.Errorf("replication: %w", err)
		}
		holders = res.keep
		repl = append(repl, res.rate)
		replRSS = max(replRSS, res.rss)
		reset = reset && res.reset
		fmt.Printf("  round %d: put on the first node %.0f MB/s, then replicated to both peers in %v: %.0f MB/s\n",
			r+1, res.putRate, res.took.Round(10*time.Millisecond), res.rate)
	}
	rr := median(repl)
	b.add(row{name: fmt.Sprintf("replicate %s to two peers (after the put)", human(sz.big)),
		value: fmt.Sprintf("%.0f MB/s (%.0f MB/s sent)", rr, 2*rr), limit: quicLim, target: "-",
		verdict: fmt.Sprintf("%.0f%% of limit", 100*rr/q)})
	b.addRSS("replication", replRSS, reset, "max of 3 nodes")

	// 5: a get on a node that holds none of the chunks, paired with one
	// holder, then with two.
	gr, err := b.getRounds(ctx, holders[1], holders[2], sz.big)
	if err != nil {
		return fmt.Errorf("get from peers: %w", err)
	}
	one, two := median(gr.one), median(gr.two)
	b.add(row{name: fmt.Sprintf("get %s whose chunks lie on one peer", human(sz.big)), value: fmt.Sprintf("%.0f MB/s", one),
		limit: quicLim, target: "-", verdict: fmt.Sprintf("%.0f%% of limit", 100*one/q)})
	b.add(row{name: fmt.Sprintf("get %s whose chunks lie on two peers", human(sz.big)), value: fmt.Sprintf("%.0f MB/s", two),
		limit: fmt.Sprintf("%.0f MB/s from one peer; %s", one, quicLim), target: "-",
		verdict: fmt.Sprintf("%.2fx one peer", two/one)})
	b.addRSS("get from one peer", gr.rssOne, gr.reset, "the holder")
	b.addRSS("get from two peers", gr.rssTwo, gr.reset, "max of 2")
	return nil
}

// addRSS adds the peak RSS of serving nodes during a phase.
func (b *bench) addRSS(phase string, rss int64, reset bool, which string) {
	if !reset {
		which += ", since start: VmHWM not reset"
	}
	b.add(row{name: fmt.Sprintf("peak RSS of serve, %s (%s)", phase, which), value: fmt.Sprintf("%.1f MiB", float64(rss)/(1<<20)),
		limit: "64 MiB (local appliance)", target: "< 64 MiB", verdict: verdict(rss < rssTarget, fmt.Sprintf("%.0f%% of limit", 100*float64(rss)/rssTarget))})
}

type remotePutRound struct {
	rate, reputRate float64
	sent, reputSent int64
	rss, reputRSS   int64
	reset           bool
}

// remotePutRound pairs a fresh laptop repository (not serving) with a
// fresh serving home node, and puts the file on home twice.
func (b *bench) remotePutRound(ctx context.Context, r int, file string, size int64) (res remotePutRound, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*phaseTimeout(size))
	defer cancel()
	home, err := b.initRepo(ctx, fmt.Sprintf("peers/home-%d", r))
	defer os.RemoveAll(home)
	if err != nil {
		return res, err
	}
	laptop, err := b.initRepo(ctx, fmt.Sprintf("peers/laptop-%d", r))
	defer os.RemoveAll(laptop)
	if err != nil {
		return res, err
	}
	srv, err := b.serve(ctx, "home", home)
	if err != nil {
		return res, err
	}
	defer srv.stop()
	lid, err := b.nodeID(ctx, laptop)
	if err != nil {
		return res, err
	}
	if _, err := b.loftCmd(ctx, laptop, "peer", "add", srv.id, srv.addr, "--name", "home"); err != nil {
		return res, err
	}
	if _, err := b.loftCmd(ctx, home, "peer", "add", lid); err != nil {
		return res, err
	}
	put := func() (remotePutJSON, float64, int64, error) {
		srv.resetPeak()
		el, _, out, err := b.runLoft(ctx, laptop, "--node", "home", "put", "--json", file, "--as", "big.bin")
		var p remotePutJSON
		if err == nil {
			err = json.Unmarshal(out, &p)
		}
		if err == nil {
			err = srv.alive()
		}
		if err == nil && p.Bytes != size {
			err = fmt.Errorf("remote put stored %d of %d bytes", p.Bytes, size)
		}
		if err != nil {
			err = fmt.Errorf("%w\nserve log:\n%s", err, srv.logTail())
		}
		return p, mbps(size, el), srv.peakRSS(), err
	}
	p, rate, rss, err := put()
	if err != nil {
		return res, err
	}
	res.rate, res.sent, res.rss, res.reset = rate, p.BytesSent, rss, srv.hwmReset
	if p, rate, rss, err = put(); err != nil {
		return res, err
	}
	res.reputRate, res.reputSent, res.reputRSS, res.reset = rate, p.BytesSent, rss, res.reset && srv.hwmReset
	return res, nil
}

type replicationRound struct {
	putRate, rate float64
	took          time.Duration
	rss           int64
	reset         bool
	keep          []*server // the three nodes, when asked to keep them
}

// replicationRound starts three serving nodes, each wanting 3 copies of
// every chunk, pairs every two of them with invite/join, puts the file on
// the first and times from the end of that put until its status reports
// no chunk below 3 copies.
func (b *bench) replicationRound(ctx context.Context, r int, file string, size int64, keep bool) (res replicationRound, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*phaseTimeout(size))
	defer cancel()
	var nodes []*server
	defer func() {
		if err != nil || !keep {
			for _, s := range nodes {
				s.stop()
				os.RemoveAll(s.repo)
			}
		}
	}()
	for _, name := range []string{"a", "b", "c"} {
		repo, err := b.initRepo(ctx, fmt.Sprintf("peers/repl-%d-%s", r, name))
		if err != nil {
			os.RemoveAll(repo)
			return res, err
		}
		if err := b.configure(ctx, repo, "replicate-interval", "200ms", "heartbeat-interval", "200ms", "replicas", "3"); err != nil {
			os.RemoveAll(repo)
			return res, err
		}
		s, err := b.serve(ctx, name, repo)
		if err != nil {
			os.RemoveAll(repo)
			return res, err
		}
		nodes = append(nodes, s)
	}
	a := nodes[0]
	for _, p := range [][2]*server{{nodes[0], nodes[1]}, {nodes[0], nodes[2]}, {nodes[1], nodes[2]}} {
		if err := b.invite(ctx, p[0], p[1]); err != nil {
			return res, err
		}
	}
	for _, s := range nodes {
		err := waitFor(ctx, 30*time.Second, 100*time.Millisecond, func() (bool, error) {
			st, err := b.status(ctx, s.repo)
			if err != nil {
				return false, err
			}
			online := 0
			for _, p := range st.Peers {
				if p.State == "online" {
					online++
				}
			}
			return online == 2, s.alive()
		})
		if err != nil {
			return res, fmt.Errorf("waiting for node %s to see both peers online: %w\n%s", s.name, err, s.logTail())
		}
	}
	resetPeaks(nodes...)
	pr, rate, _, err := b.put(ctx, a.repo, file, "--as", "big.bin")
	if err != nil {
		return res, err
	}
	if pr.Bytes != size {
		return res, fmt.Errorf("put stored %d of %d bytes", pr.Bytes, size)
	}
	res.putRate = rate
	start := time.Now()
	var last statusJSON
	err = waitFor(ctx, phaseTimeout(2*size), 100*time.Millisecond, func() (bool, error) {
		st, err := b.status(ctx, a.repo)
		last = st
		if err != nil {
			return false, err
		}
		for _, s := range nodes {
			if err := s.alive(); err != nil {
				return false, err
			}
		}
		return st.Replication.Chunks > 0 && st.Replication.Below == 0, nil
	})
	if err != nil {
		return res, fmt.Errorf("waiting for replication (last status: %d chunks, %d below): %w\n%s", last.Replication.Chunks, last.Replication.Below, err, a.logTail())
	}
	res.took = time.Since(start)
	res.rate = mbps(size, res.took)
	res.rss, res.reset = peaks(nodes...)
	if keep {
		res.keep = nodes
	}
	return res, nil
}

type getRoundsResult struct {
	one, two       []float64
	rssOne, rssTwo int64
	reset          bool
}

// getRounds reads the file on a fourth node that holds none of its chunks:
// the reader serves only until it has received the catalog from holder b
// (so no node pushes chunks to it), then gets the file with b as its only
// peer, and with b and c, in turn. b and c hold every chunk.
func (b *bench) getRounds(ctx context.Context, hb, hc *server, size int64) (res getRoundsResult, err error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(2*rounds)*phaseTimeout(size))
	defer cancel()
	res.reset = true
	// The holders settle first: each confirms the other two copies, so
	// neither sees a reason to push to the reader.
	for _, s := range []*server{hb, hc} {
		err := waitFor(ctx, time.Minute, 200*time.Millisecond, func() (bool, error) {
			st, err := b.status(ctx, s.repo)
			return err == nil && st.Replication.Chunks > 0 && st.Replication.Below == 0, err
		})
		if err != nil {
			return res, fmt.Errorf("node %s still has chunks below 3 copies: %w", s.name, err)
		}
	}
	reader, err := b.initRepo(ctx, "peers/reader")
	defer os.RemoveAll(reader)
	if err != nil {
		return res, err
	}
	rid, err := b.nodeID(ctx, reader)
	if err != nil {
		return res, err
	}
	pair := func(h *server, name string) error {
		if _, err := b.loftCmd(ctx, reader, "peer", "add", h.id, h.addr, "--name", name); err != nil {
			return err
		}
		_, err := b.loftCmd(ctx, h.repo, "peer", "add", rid)
		return err
	}
	unpair := func(h *server) error {
		if _, err := b.loftCmd(ctx, reader, "peer", "rm", h.id); err != nil {
			return err
		}
		_, err := b.loftCmd(ctx, h.repo, "peer", "rm", rid)
		return err
	}
	if err := pair(hb, "b"); err != nil {
		return res, err
	}
	rs, err := b.serve(ctx, "reader", reader)
	if err != nil {
		return res, err
	}
	err = waitFor(ctx, time.Minute, 200*time.Millisecond, func() (bool, error) {
		ok, err := b.lists(ctx, reader, "big.bin")
		if err == nil {
			err = rs.alive()
		}
		return ok, err
	})
	rs.stop()
	if err != nil {
		return res, fmt.Errorf("reader never received big.bin: %w\n%s", err, rs.logTail())
	}
	held := func() error {
		st, err := b.status(ctx, reader)
		if err == nil && st.Node.Chunks != 0 {
			err = fmt.Errorf("the reader holds %d chunks: the get would not be remote", st.Node.Chunks)
		}
		return err
	}
	get := func(holders ...*server) (float64, int64, error) {
		if err := held(); err != nil {
			return 0, 0, err
		}
		resetPeaks(holders...)
		dst := filepath.Join(b.dir, "peers", "got.bin")
		defer os.Remove(dst)
		el, _, _, err := b.runLoft(ctx, reader, "get", "big.bin", dst)
		if err != nil {
			return 0, 0, err
		}
		fi, err := os.Stat(dst)
		if err == nil && fi.Size() != size {
			err = fmt.Errorf("get wrote %d of %d bytes", fi.Size(), size)
		}
		for _, h := range holders {
			err = errors.Join(err, h.alive())
		}
		rss, reset := peaks(holders...)
		res.reset = res.reset && reset
		return mbps(size, el), rss, err
	}
	for r := range rounds {
		one, rss, err := get(hb)
		if err != nil {
			return res, err
		}
		res.one, res.rssOne = append(res.one, one), max(res.rssOne, rss)
		if err := pair(hc, "c"); err != nil {
			return res, err
		}
		two, rss, err := get(hb, hc)
		if err != nil {
			return res, err
		}
		res.two, res.rssTwo = append(res.two, two), max(res.rssTwo, rss)
		if err := unpair(hc); err != nil {
			return res, err
		}
		fmt.Printf("  round %d: get on a fourth node from one peer %.0f MB/s, from two peers %.0f MB/s\n", r+1, one, two)
	}
	if err := held(); err != nil {
		return res, err
	}
	return res, nil
}
