package catalog

import (
	"context"
	"strconv"
	"time"
	"unicode/utf8"
)

// Quarantined is a change a peer sent that this node refused. Its fields
// are what the peer sent, quoted and shortened: safe to print.
type Quarantined struct {
	Peer      string    `json:"peer"`
	Origin    string    `json:"origin"`
	OriginSeq int64     `json:"origin_seq"`
	Name      string    `json:"name"`
	Reason    string    `json:"reason"`
	First     time.Time `json:"first"`
	Last      time.Time `json:"last"`
	Count     int64     `json:"count"` // times it arrived
}

// Quarantine records that the change rv from peer was refused for reason.
// The change is skipped; the ones after it are not held up.
func (tx *Tx) Quarantine(ctx context.Context, peer string, rv RemoteVersion, reason error) error {
	now := nanos(tx.now)
	_, err := tx.ExecContext(ctx, `INSERT INTO quarantine(first, last, peer, origin, origin_seq, name, reason)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(peer, origin, origin_seq, name) DO UPDATE SET last = excluded.last, count = count + 1, reason = excluded.reason`,
		now, now, printable(peer, 64), printable(rv.Origin, 64), rv.OriginSeq, printable(rv.Name, 200), printable(reason.Error(), 500))
	return err
}

// Quarantined returns how many refused changes are recorded, and the
// newest limit of them.
func (c *Catalog) Quarantined(ctx context.Context, limit int) (int64, []Quarantined, error) {
	var total int64
	if err := c.r.QueryRowContext(ctx, `SELECT count(*) FROM quarantine`).Scan(&total); err != nil {
		return 0, nil, classify(err)
	}
	rows, err := c.r.QueryContext(ctx, `SELECT peer, origin, origin_seq, name, reason, first, last, count
		FROM quarantine ORDER BY last DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return 0, nil, classify(err)
	}
	defer rows.Close()
	out := []Quarantined{}
	for rows.Next() {
		var q Quarantined
		var first, last int64
		if err := rows.Scan(&q.Peer, &q.Origin, &q.OriginSeq, &q.Name, &q.Reason, &first, &last, &q.Count); err != nil {
			return 0, nil, classify(err)
		}
		q.First, q.Last = fromNanos(first), fromNanos(last)
		out = append(out, q)
	}
	return total, out, classify(rows.Err())
}

// printable quotes s in ASCII (control characters, invalid UTF-8 and all
// escaped), cut to about max bytes of the original.
func printable(s string, max int) string {
	if len(s) <= max {
		return strconv.QuoteToASCII(s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.QuoteToASCII(s[:cut]) + "…(" + strconv.Itoa(len(s)) + " bytes)"
}
