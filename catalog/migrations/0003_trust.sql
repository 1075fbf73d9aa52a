-- Changes from peers that this node refused: recorded, skipped, and reported
-- by status and check. What the peer sent is kept quoted (ASCII) and
-- shortened, so it is safe to print. A change refused again (a peer's log
-- read again) counts up instead of adding a row.
CREATE TABLE quarantine (
	id         INTEGER PRIMARY KEY,
	first      INTEGER NOT NULL,
	last       INTEGER NOT NULL,
	count      INTEGER NOT NULL DEFAULT 1,
	peer       TEXT NOT NULL,
	origin     TEXT NOT NULL,
	origin_seq INTEGER NOT NULL,
	name       TEXT NOT NULL,
	reason     TEXT NOT NULL,
	UNIQUE (peer, origin, origin_seq, name)
);
