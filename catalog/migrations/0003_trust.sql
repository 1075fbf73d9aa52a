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

-- hash identifies a change's content. Two changes with one identity
-- (origin, origin_seq) and different hashes are a fork, which only a
-- catalog that went back in time makes. NULL for changes logged before.
ALTER TABLE changes ADD COLUMN hash BLOB;

-- The identity of the change at pull_seq in the peer's log: a peer whose log
-- went back in time no longer has it there, and is read again from the
-- start. audit_seq is how far this node's own changes are confirmed
-- identical on the peer (an origin_seq of this node's): a catalog restored
-- from a backup carries an older value, so the audit covers what it lost.
ALTER TABLE peers ADD COLUMN pull_origin TEXT NOT NULL DEFAULT '';
ALTER TABLE peers ADD COLUMN pull_origin_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE peers ADD COLUMN audit_seq INTEGER NOT NULL DEFAULT 0;

-- A serving node keeps its peers' heartbeats in memory and writes a peer's
-- record (last_seen, info, state) only when its state changes, its figures
-- move, or serving stops: an idle node writes nothing. While it serves,
-- other processes take a peer's state from here.
ALTER TABLE peers ADD COLUMN state TEXT NOT NULL DEFAULT '';

-- This node's own changes that TakeBack moved to a new identity (to_seq),
-- by their old identity and content hash: a peer that holds one under the
-- old identity holds neither a lost change nor a fork.
CREATE TABLE renumbered (
	origin_seq INTEGER NOT NULL,
	hash       BLOB NOT NULL,
	to_seq     INTEGER NOT NULL,
	PRIMARY KEY (origin_seq, hash)
) WITHOUT ROWID;

-- What happened to this node's history: a rewind found and repaired (its
-- own changes taken back from a peer, its later ones renumbered), a fork
-- seen in another node's changes, a peer's log read again.
CREATE TABLE history (
	id     INTEGER PRIMARY KEY,
	at     INTEGER NOT NULL,
	kind   TEXT NOT NULL,
	peer   TEXT NOT NULL DEFAULT '',
	detail TEXT NOT NULL
);
