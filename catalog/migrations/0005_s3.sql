-- What a version keeps of the headers an S3 client gave its object (ETag,
-- Content-Encoding, user metadata...), as canonical JSON; '' for none.
ALTER TABLE versions ADD COLUMN meta TEXT NOT NULL DEFAULT '';

-- The S3 gateway's access keys, local to this node. The secret is kept as
-- given: SigV4 needs it to compute the signature it compares.
CREATE TABLE access_keys (
	id      TEXT PRIMARY KEY,
	secret  TEXT NOT NULL,
	name    TEXT NOT NULL DEFAULT '',
	grants  TEXT NOT NULL DEFAULT '[]',
	created INTEGER NOT NULL
) WITHOUT ROWID;

-- A bucket's settings on this node. A bucket itself is a top-level
-- directory of the catalog; a row here exists once a setting was made.
CREATE TABLE buckets (
	name       TEXT PRIMARY KEY,
	policy     TEXT NOT NULL DEFAULT 'private',
	versioning TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
