package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/progress"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

// peersModel shows the peers table, replication in flight, and pairing.
type peersModel struct {
	cursor  int
	confirm bool   // remove the selected peer?
	token   string // the last invite created
}

type inviteMsg struct {
	token string
	err   error
}

func (p peersModel) capturing() bool { return p.confirm }

func (p peersModel) update(m Model, msg tea.Msg) (peersModel, tea.Cmd) {
	if msg, ok := msg.(inviteMsg); ok {
		if msg.err != nil {
			return p, func() tea.Msg { return noticeMsg{err: msg.err} }
		}
		p.token = msg.token
	}
	return p, nil
}

func (p peersModel) key(m Model, msg tea.KeyMsg) (peersModel, tea.Cmd) {
	k := m.keys
	peers := m.status.Peers
	if p.confirm {
		p.confirm = false
		if !key.Matches(msg, k.Confirm) || p.cursor >= len(peers) {
			return p, nil
		}
		id := peers[p.cursor].ID
		return p, func() tea.Msg {
			err := m.b.RemovePeer(m.ctx, id)
			return noticeMsg{text: "removed peer " + id[:8], err: err}
		}
	}
	switch {
	case key.Matches(msg, k.Up):
		p.cursor = max(0, p.cursor-1)
	case key.Matches(msg, k.Down):
		p.cursor = min(max(0, len(peers)-1), p.cursor+1)
	case key.Matches(msg, k.RemovePeer):
		if p.cursor < len(peers) {
			p.confirm = true
		}
	case key.Matches(msg, k.Invite):
		return p, func() tea.Msg {
			if len(m.opts.InviteAddrs) == 0 {
				return inviteMsg{err: fmt.Errorf("invite: no address to put in the token (serve, or set listen to a dialable address)")}
			}
			inv, err := m.b.Invite(m.ctx, m.opts.InviteAddrs, time.Hour)
			return inviteMsg{token: inv.String(), err: err}
		}
	}
	return p, nil
}

func (p peersModel) view(m Model, height int) string {
	var b strings.Builder
	now := time.Now()
	peers := m.status.Peers
	b.WriteString(m.st.title.Render(fmt.Sprintf("Peers (%d)", len(peers))) + "\n")
	b.WriteString(m.st.dim.Render(fmt.Sprintf("  %-9s %-10s %-7s %-7s %-9s %7s %7s %9s", "ID", "NAME", "ROLE", "STATE", "SEEN", "RTT", "CHUNKS", "FREE")) + "\n")
	if len(peers) == 0 {
		b.WriteString(m.st.dim.Render("  no peers: press i for an invite token, then loft join TOKEN on the other node") + "\n")
	}
	for i, pr := range peers {
		state := pr.State
		rtt := "-"
		if pr.RTT > 0 {
			rtt = pr.RTT.Round(10 * time.Microsecond).String()
		}
		line := fmt.Sprintf("%-9s %-10s %-7s %-7s %-9s %7s %7d %9s", pr.ID[:8], clip(pr.Name, 10), pr.Role, state,
			ago(pr.LastSeen, now), rtt, pr.Chunks, size(pr.Free))
		switch {
		case i == p.cursor:
		case pr.Role == "storage" && state == "offline":
			line = m.st.bad.Render(line)
		case state == "suspect":
			line = m.st.warn.Render(line)
		}
		b.WriteString(m.row(line, i == p.cursor) + "\n")
	}
	b.WriteString("\n" + m.st.title.Render("Replication") + "\n")
	r := m.status.Replication
	done := 1.0
	if r.Chunks > 0 {
		done = float64(r.Chunks-r.Below) / float64(r.Chunks)
	}
	pb := progress.New(progress.WithDefaultGradient(), progress.WithWidth(max(10, min(50, m.width-36))))
	fmt.Fprintf(&b, "  %s  %d of %d chunks have %s\n", pb.ViewAs(done), r.Chunks-r.Below, r.Chunks, copiesWord(r.Replicas))
	switch {
	case r.Below > 0 && m.live:
		fmt.Fprintf(&b, "  %d chunks (%s) below, %d being copied by this node\n", r.Below, size(r.BelowBytes), r.UnderRepair)
	case r.Below > 0:
		fmt.Fprintf(&b, "  %d chunks (%s) below; nothing copies them while no node serves\n", r.Below, size(r.BelowBytes))
	}
	if t := m.status.Transfer; t != nil {
		fmt.Fprintf(&b, "  sending %s/s, receiving %s/s\n", size(int64(t.SendRate)), size(int64(t.RecvRate)))
	}
	if fl := m.status.InFlight; len(fl) > 0 {
		b.WriteString("\n" + m.st.title.Render("In flight") + "\n")
		tb := progress.New(progress.WithDefaultGradient(), progress.WithWidth(max(10, min(30, m.width-50))))
		for i, f := range fl {
			if i == 5 {
				fmt.Fprintf(&b, "  and %d more\n", len(fl)-5)
				break
			}
			frac := 0.0
			if f.Total > 0 {
				frac = float64(f.Done) / float64(f.Total)
			}
			fmt.Fprintf(&b, "  %-9s to %-8s %s %d chunks, %s\n", f.Kind, f.Peer[:min(8, len(f.Peer))], tb.ViewAs(frac), f.Chunks, size(f.Total))
		}
	}
	var foot string
	switch {
	case p.confirm && p.cursor < len(peers):
		foot = m.st.warn.Render(fmt.Sprintf("remove peer %s %s? it will no longer be trusted (y/n)", peers[p.cursor].ID[:8], safe(peers[p.cursor].Name)))
	case p.token != "":
		// The token is wrapped, not cut: it must be copied whole.
		foot = "invite (valid 1h, once), on the other node: loft join TOKEN\n" + ansi.Hardwrap(p.token, m.width, true)
	}
	lines := strings.Count(b.String(), "\n")
	for ; lines < height-lipgloss.Height(foot); lines++ {
		b.WriteString("\n")
	}
	return b.String() + foot
}
