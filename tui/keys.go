package tui

import (
	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
)

type keyMap struct {
	Quit, ForceQuit, Help, Next, Prev, Screen, Refresh key.Binding
	Up, Down, Open, Back, Filter                       key.Binding
	Get, Versions, Restore, Delete                     key.Binding
	Invite, RemovePeer                                 key.Binding
	Preview, RunGC                                     key.Binding
	Confirm, Cancel                                    key.Binding
}

func newKeyMap() keyMap {
	b := func(keys []string, k, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(k, desc))
	}
	return keyMap{
		Quit:       b([]string{"q"}, "q", "quit"),
		ForceQuit:  b([]string{"ctrl+c"}, "ctrl+c", "quit"),
		Help:       b([]string{"?"}, "?", "more keys"),
		Next:       b([]string{"tab"}, "tab", "next screen"),
		Prev:       b([]string{"shift+tab"}, "shift+tab", "previous screen"),
		Screen:     b([]string{"1", "2", "3", "4", "5"}, "1-5", "screen"),
		Refresh:    b([]string{"ctrl+r"}, "ctrl+r", "reload"),
		Up:         b([]string{"up", "k"}, "↑/k", "up"),
		Down:       b([]string{"down", "j"}, "↓/j", "down"),
		Open:       b([]string{"enter"}, "enter", "open"),
		Back:       b([]string{"backspace", "left", "h"}, "backspace", "up a level"),
		Filter:     b([]string{"/"}, "/", "filter"),
		Get:        b([]string{"g"}, "g", "get to a directory"),
		Versions:   b([]string{"v"}, "v", "versions"),
		Restore:    b([]string{"r"}, "r", "restore version"),
		Delete:     b([]string{"d"}, "d", "delete"),
		Invite:     b([]string{"i"}, "i", "invite token"),
		RemovePeer: b([]string{"x"}, "x", "remove peer"),
		Preview:    b([]string{"p"}, "p", "preview gc"),
		RunGC:      b([]string{"r"}, "r", "run gc"),
		Confirm:    b([]string{"y", "enter"}, "y/enter", "confirm"),
		Cancel:     b([]string{"esc", "n"}, "esc", "cancel"),
	}
}

// screenHelp is the key help of one screen: its own keys, then the global
// ones.
type screenHelp struct {
	own    []key.Binding
	global []key.Binding
}

// ShortHelp puts the global keys first: "? more keys" and "q quit" must
// survive the truncation of a narrow window.
func (h screenHelp) ShortHelp() []key.Binding {
	return append(append([]key.Binding{}, h.global...), h.own...)
}

func (h screenHelp) FullHelp() [][]key.Binding { return [][]key.Binding{h.own, h.global} }

var _ help.KeyMap = screenHelp{}

func (m Model) screenKeys() help.KeyMap {
	k := m.keys
	global := []key.Binding{k.Help, k.Quit, k.Next}
	if m.help.ShowAll {
		global = []key.Binding{k.Next, k.Prev, k.Screen, k.Refresh, k.Help, k.Quit, k.ForceQuit}
	}
	var own []key.Binding
	switch m.screen {
	case screenFiles:
		if m.files.capturing() {
			return screenHelp{own: []key.Binding{k.Confirm, k.Cancel}}
		}
		if m.files.versions != nil {
			own = []key.Binding{k.Up, k.Down, k.Restore, k.Back}
		} else {
			own = []key.Binding{k.Up, k.Down, k.Open, k.Back, k.Filter, k.Get, k.Versions, k.Delete}
		}
	case screenPeers:
		if m.peers.capturing() {
			return screenHelp{own: []key.Binding{k.Confirm, k.Cancel}}
		}
		own = []key.Binding{k.Up, k.Down, k.Invite, k.RemovePeer}
	case screenGC:
		own = []key.Binding{k.Preview, k.RunGC}
	}
	return screenHelp{own: own, global: global}
}
