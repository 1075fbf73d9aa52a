package node

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// ServiceStatus is what a surface served beside the node (the S3 gateway;
// later the share-link page, metrics) says of itself in Status: where it
// answers and its traffic since it started.
type ServiceStatus struct {
	Name     string    `json:"name"`
	Addr     string    `json:"addr"`
	Since    time.Time `json:"since"`
	Requests int64     `json:"requests"`
	Failed   int64     `json:"failed"`
	BytesIn  int64     `json:"bytes_in"`
	BytesOut int64     `json:"bytes_out"`
}

// services holds the reporters of the serving process's surfaces.
type services struct {
	mu  sync.Mutex
	fns map[string]func() ServiceStatus
}

// ReportService registers a surface this process serves: Status (here,
// and to other loft processes asking the serving one) includes what
// report returns, until the returned function is called.
func (n *Node) ReportService(name string, report func() ServiceStatus) (remove func()) {
	n.svcs.mu.Lock()
	defer n.svcs.mu.Unlock()
	if n.svcs.fns == nil {
		n.svcs.fns = make(map[string]func() ServiceStatus)
	}
	n.svcs.fns[name] = report
	return func() {
		n.svcs.mu.Lock()
		defer n.svcs.mu.Unlock()
		delete(n.svcs.fns, name)
	}
}

// serviceStatuses reports every registered surface, by name.
func (n *Node) serviceStatuses() []ServiceStatus {
	n.svcs.mu.Lock()
	fns := make([]func() ServiceStatus, 0, len(n.svcs.fns))
	for _, fn := range n.svcs.fns {
		fns = append(fns, fn)
	}
	n.svcs.mu.Unlock()
	var out []ServiceStatus
	for _, fn := range fns {
		out = append(out, fn())
	}
	slices.SortFunc(out, func(a, b ServiceStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}
