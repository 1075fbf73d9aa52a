package tui

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/charmbracelet/lipgloss"
	"github.com/loftstore/loft/catalog"
)

// verdict is the overview's first line: is the data safe right now?
func (m Model) verdict() (string, lipgloss.Style) {
	if !m.loaded {
		return "Reading the repository…", m.st.dim
	}
	r := m.status.Replication
	storage := 0
	for _, p := range m.status.Peers {
		if p.Role == "storage" {
			storage++
		}
	}
	switch {
	case r.Chunks == 0:
		return "Nothing stored yet.", m.st.dim
	case r.Below == 0 && r.Unplaced == 0 && storage == 0:
		return fmt.Sprintf("All %s are on this node only: pair another node for a second copy", size(r.Bytes)), m.st.warn
	case r.Below == 0 && r.Unplaced == 0:
		return fmt.Sprintf("All %s have %s", size(r.Bytes), copiesWord(r.Replicas)), m.st.good
	}
	var parts []string
	if r.Below > 0 {
		parts = append(parts, fmt.Sprintf("%s %s fewer than %s", plural(r.Below, "chunk"), hasHave(r.Below), copiesWord(r.Replicas)))
	}
	if r.Unplaced > 0 {
		parts = append(parts, fmt.Sprintf("%s %s on no known node", plural(r.Unplaced, "chunk"), isAre(r.Unplaced)))
	}
	s := fmt.Sprintf("%s at risk: %s", size(r.BelowBytes), strings.Join(parts, ", "))
	switch {
	case r.UnderRepair > 0 && !m.live:
		s += "; nothing repairs them while no node serves (loft serve)"
	case r.UnderRepair > 0:
		s += ", repairing"
		if t := m.status.Transfer; t != nil && t.SendRate > 0 {
			left := time.Duration(float64(r.BelowBytes) / t.SendRate * float64(time.Second))
			s += ", about " + roundETA(left) + " left"
		}
	}
	return s, m.st.bad
}

func roundETA(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds())+1)
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()+0.5))
	}
	return fmt.Sprintf("%.1f h", d.Hours())
}

func (m Model) overviewView(height int) string {
	now := time.Now()
	var b strings.Builder
	v, style := m.verdict()
	b.WriteString(style.Width(m.width).Render(v) + "\n\n")
	if !m.loaded {
		return b.String()
	}
	s := m.stat
	fmt.Fprintf(&b, "%s  %s logical, %s stored, dedup %.2fx, %d objects, %d versions\n",
		m.st.title.Render("Data"), size(s.LogicalBytes), size(s.StoredBytes), s.DedupRatio, s.Objects, s.Versions)
	if g := m.status.GC; g.Chunks > 0 {
		fmt.Fprintf(&b, "      garbage pending %s in %s (%s reclaimable now)\n", size(g.Bytes), plural(g.Chunks, "chunk"), size(g.ReclaimBytes))
	}
	b.WriteString("\n" + m.st.title.Render("Disk use") + "\n")
	barW := max(10, min(40, m.width-51))
	me := m.status.Node
	fmt.Fprintf(&b, "  %-18s %s %9s used %9s free\n", clip(orID(me.Name, me.ID)+" (here)", 18), bar(frac(me.Stored, me.Free), barW), size(me.Stored), size(me.Free))
	if !me.ReceivingPaused.IsZero() {
		b.WriteString(m.st.bad.Render(fmt.Sprintf("  the disk is full: receiving from peers is paused (%s)", ago(me.ReceivingPaused, now))) + "\n")
	}
	for _, p := range m.status.Peers {
		if p.Role != "storage" {
			continue
		}
		name := orID(p.Name, p.ID)
		if p.State != "online" {
			name += " (" + p.State + ")"
		}
		line := fmt.Sprintf("  %-18s %s %9s used %9s free", clip(name, 18), bar(frac(p.Stored, p.Free), barW), size(p.Stored), size(p.Free))
		if p.State != "online" {
			line = m.st.warn.Render(line)
		}
		b.WriteString(line + "\n")
	}
	b.WriteString("\n" + m.st.title.Render("Transfers") + "  ")
	if t := m.status.Transfer; t != nil {
		fmt.Fprintf(&b, "%s/s out, %s/s in  %s\n", size(int64(t.SendRate)), size(int64(t.RecvRate)), sparkline(m.rates, max(10, min(40, m.width-40))))
	} else {
		b.WriteString(m.st.dim.Render("none: no node is serving this repository") + "\n")
	}
	for _, sv := range m.status.Services {
		fmt.Fprintf(&b, "%s  %s on %s: %s, %s failed, %s in, %s out\n", m.st.title.Render("Gateway"), sv.Name, sv.Addr,
			plural(sv.Requests, "request"), fmt.Sprint(sv.Failed), size(sv.BytesIn), size(sv.BytesOut))
	}
	b.WriteString("\n" + m.st.title.Render("Last GC") + "     ")
	if len(m.gcScreen.runs) > 0 {
		r := m.gcScreen.runs[0]
		res := fmt.Sprintf("removed %s (%s), %s", plural(r.Chunks, "chunk"), size(r.Bytes), plural(r.Orphans, "orphan"))
		if r.DryRun {
			res = "preview: " + res
		}
		if r.Error != "" {
			res = m.st.bad.Render("failed: " + oneLine(r.Error))
		}
		fmt.Fprintf(&b, "%s, %s\n", ago(r.Finished, now), res)
	} else {
		b.WriteString("never\n")
	}
	b.WriteString(m.st.title.Render("Last scrub") + "  ")
	if rec, ok := m.status.Loops["scrub"]; ok {
		var sr struct {
			Chunks, Corrupt, Repaired int64
		}
		raw, _ := json.Marshal(rec.Result)
		json.Unmarshal(raw, &sr)
		res := fmt.Sprintf("%d chunks read, %d corrupt, %d repaired", sr.Chunks, sr.Corrupt, sr.Repaired)
		if sr.Corrupt > sr.Repaired {
			res = m.st.bad.Render(res)
		}
		fmt.Fprintf(&b, "%s, %s\n", ago(rec.At, now), res)
	} else {
		b.WriteString("never (serve scrubs every scrub-interval)\n")
	}
	h := m.status.History
	if h.Quarantined > 0 {
		b.WriteString(m.st.title.Render("Refused") + "     " + m.st.warn.Render(fmt.Sprintf("%s from peers (bad names or content), skipped; loft status lists them",
			plural(h.Quarantined, "change"))) + "\n")
	}
	if len(h.Recent) > 0 {
		ev := h.Recent[0]
		fmt.Fprintf(&b, "%s     %s, %s\n", m.st.title.Render("History"), ago(ev.At, now), m.st.warn.Render(catalog.DescribeHistory(ev.Kind)))
	}
	return b.String()
}

func frac(used, free int64) float64 {
	if used+free <= 0 {
		return 0
	}
	return float64(used) / float64(used+free)
}

func orID(name, id string) string {
	if name != "" {
		return name
	}
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func clip(s string, n int) string {
	s = safe(s)
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// safe makes text from a catalog or a peer printable: control characters
// and invalid UTF-8 are shown as escapes, so that a name can neither move
// the cursor nor reconfigure the terminal.
func safe(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

func copiesWord(n int) string {
	if n == 1 {
		return "1 copy"
	}
	return fmt.Sprintf("%d copies", n)
}

func hasHave(n int64) string {
	if n == 1 {
		return "has"
	}
	return "have"
}

func isAre(n int64) string {
	if n == 1 {
		return "is"
	}
	return "are"
}
