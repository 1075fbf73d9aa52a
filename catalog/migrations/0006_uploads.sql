-- Multipart uploads in progress (the S3 gateway's). A part's chunks are
-- referenced from upload_chunks, each row one reference in chunks.refs as
-- a version's are, so that gc keeps them until the upload completes (its
-- version takes them over) or is aborted.
CREATE TABLE uploads (
	id           TEXT PRIMARY KEY,
	name         TEXT NOT NULL,
	created      INTEGER NOT NULL,
	touched      INTEGER NOT NULL,
	content_type TEXT NOT NULL DEFAULT '',
	meta         TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE INDEX uploads_name ON uploads(name);

CREATE TABLE upload_parts (
	upload_id TEXT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
	num       INTEGER NOT NULL,
	size      INTEGER NOT NULL,
	etag      TEXT NOT NULL,
	created   INTEGER NOT NULL,
	PRIMARY KEY (upload_id, num)
) WITHOUT ROWID;

CREATE TABLE upload_chunks (
	upload_id TEXT NOT NULL,
	num       INTEGER NOT NULL,
	idx       INTEGER NOT NULL,
	chunk_id  INTEGER NOT NULL REFERENCES chunks(id),
	PRIMARY KEY (upload_id, num, idx)
) WITHOUT ROWID;
CREATE INDEX upload_chunks_chunk ON upload_chunks(chunk_id);
