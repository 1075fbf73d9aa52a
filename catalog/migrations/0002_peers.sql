-- Peers this node has pinned. pull_seq is how far into the peer's change
-- log this node has applied; info is the peer's last heartbeat (JSON).
CREATE TABLE peers (
	id        TEXT PRIMARY KEY,
	name      TEXT NOT NULL DEFAULT '',
	addrs     TEXT NOT NULL DEFAULT '[]',
	added     INTEGER NOT NULL,
	last_seen INTEGER NOT NULL DEFAULT 0,
	pull_seq  INTEGER NOT NULL DEFAULT 0,
	info      TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;

-- Single-use pairing secrets. The secret itself is kept, not a hash: the
-- joiner proves it with an HMAC that the server recomputes.
CREATE TABLE invites (
	secret  BLOB PRIMARY KEY,
	expires INTEGER NOT NULL,
	used    INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- held says whether the chunk's file is in this node's store. A row with
-- held = 0 is known from a version received from a peer, which holds it.
ALTER TABLE chunks ADD COLUMN held INTEGER NOT NULL DEFAULT 1;

-- Peers that confirmed holding a chunk durably.
CREATE TABLE replicas (
	chunk_id  INTEGER NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
	peer      TEXT NOT NULL,
	confirmed INTEGER NOT NULL,
	PRIMARY KEY (chunk_id, peer)
) WITHOUT ROWID;
CREATE INDEX replicas_peer ON replicas(peer);

-- A version's identity across the cluster is the change that created it,
-- (origin, origin_seq); vv is its version vector (JSON origin -> count).
-- objects.siblings is the object's frontier: the versions (identity, vector,
-- creation time, deleted) that no known version follows; objects.vv is the
-- merge of their vectors, the clock a local write advances.
ALTER TABLE versions ADD COLUMN origin_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE versions ADD COLUMN vv TEXT NOT NULL DEFAULT '{}';
ALTER TABLE objects ADD COLUMN vv TEXT NOT NULL DEFAULT '{}';
ALTER TABLE objects ADD COLUMN siblings TEXT NOT NULL DEFAULT '[]';
CREATE INDEX versions_origin ON versions(origin, origin_seq);

-- Versions written before this migration get their identity from the log.
UPDATE versions SET origin_seq = coalesce((SELECT c.origin_seq FROM changes c JOIN objects o ON o.name = c.name
	WHERE o.id = versions.object_id AND c.version = versions.num AND c.origin = versions.origin
	AND c.op IN ('put', 'delete', 'restore') ORDER BY c.seq DESC LIMIT 1), 0);
UPDATE versions SET vv = json_object(origin, num);
UPDATE objects SET vv = coalesce((SELECT v.vv FROM versions v WHERE v.object_id = objects.id AND v.num = objects.head), '{}');
UPDATE objects SET siblings = coalesce((SELECT json_array(json_object('o', v.origin, 's', v.origin_seq, 'vv', json(v.vv),
	'c', v.created, 'd', json(CASE WHEN v.deleted THEN 'true' ELSE 'false' END))) FROM versions v WHERE v.object_id = objects.id AND v.num = objects.head), '[]');
