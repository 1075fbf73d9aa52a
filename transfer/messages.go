package transfer

import (
	"fmt"
	"time"

	"github.com/loftstore/loft/store"
)

// Operations. Control requests travel on the connection's control stream;
// the stream operations open a bulk stream each. Values are part of the
// protocol: never renumber, only add.
const (
	OpHeartbeat     Op = 1  // Heartbeat -> Heartbeat
	OpHave          Op = 2  // IDList -> Bits: which of the chunks the node holds
	OpInUse         Op = 3  // InUseReq -> Bits: which chunks a version references (for GC)
	OpChanges       Op = 4  // ChangesReq -> ChangesResp
	OpVersionChunks Op = 5  // ChunksReq -> ChunksResp, a version by identity
	OpList          Op = 6  // ListReq -> ListResp
	OpVersions      Op = 7  // NameReq -> VersionsResp
	OpStat          Op = 8  // Empty -> JSON object (node.Stat)
	OpRemove        Op = 9  // RemoveReq -> VersionsResp
	OpRestore       Op = 10 // RestoreReq -> Version
	OpLookup        Op = 11 // LookupReq -> Version: the version a get reads
	OpChunkList     Op = 12 // ChunksReq -> ChunksResp, a version by name and number
	OpBeginPut      Op = 13 // Empty -> Empty: opens a write session for this connection
	OpCommit        Op = 14 // CommitReq -> CommitResp
	OpStatus        Op = 15 // Empty -> JSON object (node.Status)
	OpJoin          Op = 16 // JoinReq -> JoinResp, on a join connection only
	OpEndPut        Op = 17 // Empty -> Empty: ends this connection's write session
	OpOrigin        Op = 18 // OriginReq -> ChangesResp: what the node holds of one origin's history

	OpPush   Op = 32 // stream: PushReq, then chunk frames; acks come back
	OpFetch  Op = 33 // stream: FetchReq, then chunk frames come back
	OpEvents Op = 34 // stream: Empty, then event frames come back (a serving node's own dashboard)
)

// Caps on lists. A message whose lists are longer is refused as a whole.
const (
	MaxIDs      = 4096 // chunk IDs in one request
	MaxChanges  = 512  // changes in one page
	MaxEntries  = 1000 // listing entries in one page
	MaxVersions = 1000 // versions in one answer
	MaxNames    = 1000 // names in one remove
	MaxAddrs    = 8
	MaxTextLen  = 4096 // any name, address or message string
)

// Empty is the body of requests and answers that carry nothing.
type Empty struct{}

// Heartbeat is what peers tell each other about themselves.
type Heartbeat struct {
	Time     time.Time `json:"time"`
	Name     string    `json:"name,omitempty"`
	Software string    `json:"software"`
	Free     int64     `json:"free"`   // bytes free on the repository's file system
	Chunks   int64     `json:"chunks"` // chunks held
	Stored   int64     `json:"stored"` // bytes of chunks held
	Listen   []string  `json:"listen,omitempty"`
}

func (h *Heartbeat) Validate() error {
	return checkStrings(append([]string{h.Name, h.Software}, h.Listen...), 2+MaxAddrs)
}

func checkStrings(ss []string, max int) error {
	if len(ss) > max {
		return fmt.Errorf("%d strings, over %d", len(ss), max)
	}
	for _, s := range ss {
		if len(s) > MaxTextLen {
			return fmt.Errorf("string of %d bytes, over %d", len(s), MaxTextLen)
		}
	}
	return nil
}

// IDList names chunks.
type IDList struct {
	IDs []store.ID `json:"ids"`
}

func (l *IDList) Validate() error {
	if len(l.IDs) > MaxIDs {
		return fmt.Errorf("%d chunk IDs, over %d", len(l.IDs), MaxIDs)
	}
	return nil
}

// Bits answers an IDList: Bits[i] is about IDs[i].
type Bits struct {
	Bits []bool `json:"bits"`
}

func (b *Bits) Validate() error {
	if len(b.Bits) > MaxIDs {
		return fmt.Errorf("%d answers, over %d", len(b.Bits), MaxIDs)
	}
	return nil
}

// InUseReq asks which chunks are referenced, or were unreferenced for less
// than Grace, or are protected by a write session.
type InUseReq struct {
	IDs   []store.ID    `json:"ids"`
	Grace time.Duration `json:"grace"`
}

func (r *InUseReq) Validate() error {
	if len(r.IDs) > MaxIDs {
		return fmt.Errorf("%d chunk IDs, over %d", len(r.IDs), MaxIDs)
	}
	return nil
}

// ChangesReq asks for the change log after a sequence. AfterOrigin and
// AfterOriginSeq are the identity of the change the asker read at After
// (empty when not known): a node whose log holds another change there went
// back in time, and answers with Reset.
type ChangesReq struct {
	After          int64  `json:"after"`
	AfterOrigin    string `json:"after_origin,omitempty"`
	AfterOriginSeq int64  `json:"after_origin_seq,omitempty"`
	Limit          int    `json:"limit"`
}

func (r *ChangesReq) Validate() error {
	if r.Limit < 1 || r.Limit > MaxChanges || r.After < 0 {
		return fmt.Errorf("bad changes request: after %d, limit %d", r.After, r.Limit)
	}
	return nil
}

// Version describes a version on the wire.
type Version struct {
	Origin      string           `json:"origin"`
	OriginSeq   int64            `json:"origin_seq"`
	Op          string           `json:"op"`
	Name        string           `json:"name"`
	Num         int64            `json:"num,omitempty"`
	Deleted     bool             `json:"deleted,omitempty"`
	Size        int64            `json:"size"`
	Mode        uint32           `json:"mode"`
	MTime       time.Time        `json:"mtime"`
	ContentType string           `json:"content_type,omitempty"`
	SHA256      [32]byte         `json:"sha256"`
	Created     time.Time        `json:"created"`
	VV          map[string]int64 `json:"vv,omitempty"`
	Chunks      int64            `json:"chunks"`
	Gone        bool             `json:"gone,omitempty"`
	Restored    int64            `json:"restored_from,omitempty"`
	Hash        []byte           `json:"hash,omitempty"`   // the change's content hash, as its origin made it
	Kind        string           `json:"kind,omitempty"`   // "", "dir" or "symlink" (catalog.Kind)
	Target      string           `json:"target,omitempty"` // a symbolic link's
	Drop        []VersionID      `json:"drop,omitempty"`   // the versions a "forget" dropped
	Meta        string           `json:"meta,omitempty"`   // an S3 object's headers (catalog.Meta's encoded form)
}

// MaxMetaLen bounds a version's encoded metadata (catalog.MaxMeta).
const MaxMetaLen = 64 << 10

// VersionID names a version across nodes: the change that made it.
type VersionID struct {
	Origin string `json:"origin"`
	Seq    int64  `json:"origin_seq"`
}

// MaxDrop bounds the versions one change names (catalog.MaxDrop).
const MaxDrop = 4096

// Validate checks what a version's receiver cannot check later. Its name
// and identity are checked where the version is used (catalog.ParseRemote,
// names.Parse), so that one bad version is refused alone.
func (v *Version) Validate() error {
	if v.Size < 0 || v.Chunks < 0 {
		return fmt.Errorf("version with negative size")
	}
	if len(v.Drop) > MaxDrop {
		return fmt.Errorf("a change that drops %d versions, over %d", len(v.Drop), MaxDrop)
	}
	if len(v.Meta) > MaxMetaLen {
		return fmt.Errorf("version with %d bytes of metadata, over %d", len(v.Meta), MaxMetaLen)
	}
	return nil
}

// Change is one entry of a change log page.
type Change struct {
	Seq     int64   `json:"seq"`
	Version Version `json:"version"`
}

// ChangesResp is a page of a change log. Last is the sequence to ask after
// next (for OpOrigin, the highest origin_seq in the page), and LastOrigin,
// LastOriginSeq the identity of the change there. Reset says the log does
// not hold what the asker read at After: read it again from the start.
type ChangesResp struct {
	Changes       []Change `json:"changes"`
	Last          int64    `json:"last"`
	LastOrigin    string   `json:"last_origin,omitempty"`
	LastOriginSeq int64    `json:"last_origin_seq,omitempty"`
	More          bool     `json:"more,omitempty"`
	Reset         bool     `json:"reset,omitempty"`
	// High, in an answer to OpOrigin, is the highest change number of the
	// origin the node holds.
	High int64 `json:"high,omitempty"`
}

// Validate checks the page's shape only. Each change is checked on its own
// where it is applied, so that one bad change is refused alone and never
// makes the page, and every change after it, unreadable.
func (r *ChangesResp) Validate() error {
	if len(r.Changes) > MaxChanges {
		return fmt.Errorf("%d changes, over %d", len(r.Changes), MaxChanges)
	}
	return nil
}

// OriginReq asks for the changes of one origin the node holds, after an
// origin_seq: a node asks for its own, to find what its catalog lost.
type OriginReq struct {
	Origin string `json:"origin"`
	After  int64  `json:"after"`
	Limit  int    `json:"limit"`
}

func (r *OriginReq) Validate() error {
	if r.Limit < 1 || r.Limit > MaxChanges || r.After < 0 {
		return fmt.Errorf("bad origin request: after %d, limit %d", r.After, r.Limit)
	}
	return checkStrings([]string{r.Origin}, 1)
}

// ChunksReq asks for a page of a version's chunk list: by identity
// (Origin, OriginSeq) or by Name and Num.
type ChunksReq struct {
	Origin    string `json:"origin,omitempty"`
	OriginSeq int64  `json:"origin_seq,omitempty"`
	Name      string `json:"name,omitempty"`
	Num       int64  `json:"num,omitempty"`
	From      int64  `json:"from"`
	Limit     int    `json:"limit"`
}

func (r *ChunksReq) Validate() error {
	if r.From < 0 || r.Limit < 1 || r.Limit > MaxIDs {
		return fmt.Errorf("bad chunk page: from %d, limit %d", r.From, r.Limit)
	}
	return checkStrings([]string{r.Origin, r.Name}, 2)
}

// ChunkRef is a chunk of a version.
type ChunkRef struct {
	ID     store.ID `json:"id"`
	Plain  int64    `json:"plain"`
	Stored int64    `json:"stored"`
}

// Validate checks the sizes a reference claims: they size buffers and read
// budgets, so a peer must not be able to name any.
func (r ChunkRef) Validate() error {
	if r.Plain < 0 || r.Plain > store.MaxChunkSize || r.Stored <= 0 || r.Stored > store.MaxStoredSize {
		return fmt.Errorf("chunk %s: plain size %d, stored size %d: out of bounds", r.ID, r.Plain, r.Stored)
	}
	return nil
}

type ChunksResp struct {
	Chunks []ChunkRef `json:"chunks"`
}

func (r *ChunksResp) Validate() error {
	if len(r.Chunks) > MaxIDs {
		return fmt.Errorf("%d chunk references, over %d", len(r.Chunks), MaxIDs)
	}
	for _, c := range r.Chunks {
		if err := c.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// ListReq asks for a page of a listing.
type ListReq struct {
	Prefix    string `json:"prefix"`
	Recursive bool   `json:"recursive,omitempty"`
	Deleted   bool   `json:"deleted,omitempty"`
	Below     bool   `json:"below,omitempty"` // only what is below Prefix, not an object it names
	After     string `json:"after,omitempty"` // resume after this entry name
	Limit     int    `json:"limit"`
}

func (r *ListReq) Validate() error {
	if r.Limit < 1 || r.Limit > MaxEntries {
		return fmt.Errorf("bad listing limit %d", r.Limit)
	}
	return checkStrings([]string{r.Prefix, r.After}, 2)
}

// Entry is a listing entry.
type Entry struct {
	Name     string  `json:"name"`
	Dir      bool    `json:"dir,omitempty"`
	Versions int64   `json:"versions,omitempty"`
	Head     Version `json:"head"`
}

type ListResp struct {
	Entries []Entry `json:"entries"`
	More    bool    `json:"more,omitempty"`
}

// Validate checks the page's shape only: each entry's name is checked on
// its own where it is used, so one bad entry is refused alone.
func (r *ListResp) Validate() error {
	if len(r.Entries) > MaxEntries {
		return fmt.Errorf("%d entries, over %d", len(r.Entries), MaxEntries)
	}
	return nil
}

type NameReq struct {
	Name string `json:"name"`
}

func (r *NameReq) Validate() error { return checkStrings([]string{r.Name}, 1) }

type VersionsResp struct {
	Versions []Version `json:"versions"`
}

// Validate checks the answer's shape only (see ListResp.Validate).
func (r *VersionsResp) Validate() error {
	if len(r.Versions) > MaxVersions {
		return fmt.Errorf("%d versions, over %d", len(r.Versions), MaxVersions)
	}
	return nil
}

type RemoveReq struct {
	Names     []string `json:"names"`
	Recursive bool     `json:"recursive,omitempty"`
}

func (r *RemoveReq) Validate() error { return checkStrings(r.Names, MaxNames) }

type RestoreReq struct {
	Name string `json:"name"`
	Num  int64  `json:"num"`
}

func (r *RestoreReq) Validate() error { return checkStrings([]string{r.Name}, 1) }

// LookupReq names the version a get reads: Num 0 is the newest.
type LookupReq struct {
	Name string `json:"name"`
	Num  int64  `json:"num,omitempty"`
}

func (r *LookupReq) Validate() error { return checkStrings([]string{r.Name}, 1) }

// CommitReq adds a version on the node from chunks it holds. The chunk list
// comes in pages: every page but the last has More set, and the node keeps
// the pages of this connection's pending commit until the last arrives.
type CommitReq struct {
	Name        string     `json:"name"`
	Size        int64      `json:"size"`
	Mode        uint32     `json:"mode"`
	MTime       time.Time  `json:"mtime"`
	ContentType string     `json:"content_type,omitempty"`
	SHA256      [32]byte   `json:"sha256"`
	Chunks      []ChunkRef `json:"chunks"`
	More        bool       `json:"more,omitempty"`
}

func (r *CommitReq) Validate() error {
	if len(r.Chunks) > MaxIDs {
		return fmt.Errorf("%d chunk references, over %d", len(r.Chunks), MaxIDs)
	}
	if r.Size < 0 {
		return fmt.Errorf("negative size")
	}
	for _, c := range r.Chunks {
		if err := c.Validate(); err != nil {
			return err
		}
	}
	return checkStrings([]string{r.Name, r.ContentType}, 2)
}

type CommitResp struct {
	Version   Version `json:"version"`
	Unchanged bool    `json:"unchanged,omitempty"`
}

// JoinReq proves knowledge of an invite's secret.
type JoinReq struct {
	Proof  []byte   `json:"proof"`
	Name   string   `json:"name,omitempty"`
	Listen []string `json:"listen,omitempty"`
}

func (r *JoinReq) Validate() error {
	if len(r.Proof) > 64 {
		return fmt.Errorf("proof of %d bytes", len(r.Proof))
	}
	return checkStrings(append([]string{r.Name}, r.Listen...), 1+MaxAddrs)
}

type JoinResp struct {
	Name   string   `json:"name,omitempty"`
	Listen []string `json:"listen,omitempty"`
}

func (r *JoinResp) Validate() error {
	return checkStrings(append([]string{r.Name}, r.Listen...), 1+MaxAddrs)
}

// FetchReq opens a fetch stream. With Relay, the node fetches chunks it
// lacks from its own peers (for a client that reads through it); peers
// never set it, so a fetch crosses at most two hops.
type FetchReq struct {
	IDs   []store.ID `json:"ids"`
	Relay bool       `json:"relay,omitempty"`
}

func (r *FetchReq) Validate() error {
	if len(r.IDs) > MaxIDs {
		return fmt.Errorf("%d chunk IDs, over %d", len(r.IDs), MaxIDs)
	}
	return nil
}

// PushReq opens a push stream. Chunk frames follow (FrameChunk: 32-byte ID,
// then the chunk as stored); the receiver answers each with FrameAck
// (32-byte ID, 2-byte code) once the chunk is durable, or refused.
type PushReq struct{}

// Frame types of bulk streams.
const (
	FrameChunk byte = 10 // 32-byte ID + stored chunk
	FrameAck   byte = 11 // 32-byte ID + 2-byte Code
	FrameMiss  byte = 12 // 32-byte ID + 2-byte Code: a fetched chunk is not served
)

// AckBody is the body of a FrameAck or FrameMiss: the chunk ID and a code.
func AckBody(id store.ID, code Code) []byte {
	b := make([]byte, store.IDSize+2)
	copy(b, id[:])
	b[store.IDSize], b[store.IDSize+1] = byte(code>>8), byte(code)
	return b
}

// ParseAck decodes AckBody.
func ParseAck(b []byte) (store.ID, Code, error) {
	if len(b) != store.IDSize+2 {
		return store.ID{}, 0, fmt.Errorf("acknowledgement of %d bytes: %w", len(b), ErrBadMessage)
	}
	return store.ID(b[:store.IDSize]), Code(b[store.IDSize])<<8 | Code(b[store.IDSize+1]), nil
}
