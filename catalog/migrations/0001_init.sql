-- Repository-wide settings: format, chunking parameters, node identity, config.
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;

-- An object is a name; its content lives in versions. head is the number of
-- the newest version; live is 0 when that version is a tombstone.
CREATE TABLE objects (
	id   INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	head INTEGER NOT NULL DEFAULT 0,
	live INTEGER NOT NULL DEFAULT 1
);

-- Versions are numbered 1, 2, ... per object and never renumbered. A
-- tombstone (deleted = 1) has no chunks. Times are Unix nanoseconds.
CREATE TABLE versions (
	id            INTEGER PRIMARY KEY,
	object_id     INTEGER NOT NULL REFERENCES objects(id),
	num           INTEGER NOT NULL,
	deleted       INTEGER NOT NULL DEFAULT 0,
	size          INTEGER NOT NULL DEFAULT 0,
	mode          INTEGER NOT NULL DEFAULT 0,
	mtime         INTEGER NOT NULL DEFAULT 0,
	content_type  TEXT NOT NULL DEFAULT '',
	sha256        BLOB,
	created       INTEGER NOT NULL,
	origin        TEXT NOT NULL,
	restored_from INTEGER,
	UNIQUE (object_id, num)
);

-- refs counts the rows of version_chunks that name the chunk: a cache that
-- check recomputes. zero_at and zero_seq say when refs last became zero
-- (wall clock for the grace period, change sequence for the sessions rule).
-- AUTOINCREMENT keeps ids increasing, which the Bloom filter's catch-up uses.
CREATE TABLE chunks (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	hash        BLOB NOT NULL UNIQUE,
	refs        INTEGER NOT NULL CHECK (refs >= 0),
	plain_size  INTEGER NOT NULL,
	stored_size INTEGER NOT NULL,
	zero_at     INTEGER,
	zero_seq    INTEGER
);
CREATE INDEX chunks_garbage ON chunks(zero_at) WHERE refs = 0;

CREATE TABLE version_chunks (
	version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
	idx        INTEGER NOT NULL,
	chunk_id   INTEGER NOT NULL REFERENCES chunks(id),
	PRIMARY KEY (version_id, idx)
) WITHOUT ROWID;
CREATE INDEX version_chunks_chunk ON version_chunks(chunk_id);

-- Every mutation, in order. seq is this repository's; (origin, origin_seq)
-- identifies a change across nodes.
CREATE TABLE changes (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	origin     TEXT NOT NULL,
	origin_seq INTEGER NOT NULL,
	at         INTEGER NOT NULL,
	op         TEXT NOT NULL,
	name       TEXT NOT NULL DEFAULT '',
	version    INTEGER NOT NULL DEFAULT 0,
	detail     TEXT NOT NULL DEFAULT '',
	UNIQUE (origin, origin_seq)
);

-- Writers that may reference chunks they have not written themselves. GC
-- spares garbage that became garbage at or after the oldest live session
-- started; a session is live while its process holds the lock on its file.
CREATE TABLE sessions (
	id        TEXT PRIMARY KEY,
	pid       INTEGER NOT NULL,
	started   INTEGER NOT NULL,
	start_seq INTEGER NOT NULL,
	what      TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;

CREATE TABLE gc_runs (
	id           INTEGER PRIMARY KEY,
	started      INTEGER NOT NULL,
	finished     INTEGER NOT NULL,
	grace_ns     INTEGER NOT NULL,
	dry_run      INTEGER NOT NULL,
	chunks       INTEGER NOT NULL,
	bytes        INTEGER NOT NULL,
	orphans      INTEGER NOT NULL,
	orphan_bytes INTEGER NOT NULL,
	error        TEXT NOT NULL DEFAULT ''
);
