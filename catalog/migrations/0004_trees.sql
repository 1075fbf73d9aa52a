-- What a version is: '' a file (its content in chunks), 'dir' a directory,
-- 'symlink' a symbolic link whose target is kept in target, never followed.
-- Directories and links have no chunks.
ALTER TABLE versions ADD COLUMN kind TEXT NOT NULL DEFAULT '';
ALTER TABLE versions ADD COLUMN target TEXT NOT NULL DEFAULT '';

-- seq is the change (this catalog's changes.seq) at which the version was
-- written here, local or from a peer: a snapshot taken at change S sees, of
-- each object, the newest version with seq <= S. Versions written before
-- this column have 0 (before every snapshot, which is where they are).
ALTER TABLE versions ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
UPDATE versions SET seq = coalesce((SELECT c.seq FROM changes c
	WHERE c.origin = versions.origin AND c.origin_seq = versions.origin_seq), 0);
-- Inserts that do not give it (0) get the newest change's: every version is
-- written after the change that made it was logged, in one transaction.
CREATE TRIGGER versions_seq AFTER INSERT ON versions WHEN NEW.seq = 0 BEGIN
	UPDATE versions SET seq = coalesce((SELECT max(seq) FROM changes), 0) WHERE id = NEW.id;
END;

-- A snapshot is the tree under prefix as a mirror put left it: every
-- object below prefix at change seq. It holds no data of its own; the
-- versions it sees are kept (prune spares them) while it exists. id is
-- eight hex digits, unique in this catalog.
CREATE TABLE snapshots (
	id        TEXT PRIMARY KEY,
	prefix    TEXT NOT NULL,
	at        INTEGER NOT NULL,
	seq       INTEGER NOT NULL,
	node      TEXT NOT NULL,
	source    TEXT NOT NULL DEFAULT '',
	files     INTEGER NOT NULL,
	dirs      INTEGER NOT NULL,
	links     INTEGER NOT NULL,
	bytes     INTEGER NOT NULL,
	new_bytes INTEGER NOT NULL,
	removed   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX snapshots_seq ON snapshots(seq);

-- The files cache: how the file behind each object name looked when a put
-- last read it, and the version that put left as the head. A file that
-- still looks the same, whose object's head is still that version, is not
-- read again. Local only: it describes this machine's files.
CREATE TABLE files_cache (
	name  TEXT PRIMARY KEY,
	size  INTEGER NOT NULL,
	mtime INTEGER NOT NULL,
	ctime INTEGER NOT NULL,
	ino   INTEGER NOT NULL,
	dev   INTEGER NOT NULL,
	num   INTEGER NOT NULL
) WITHOUT ROWID;
