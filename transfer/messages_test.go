package transfer

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/loftstore/loft/store"
)

// messages returns a fresh value of every message type a peer may send.
func messages() []any {
	return []any{&Heartbeat{}, &IDList{}, &Bits{}, &InUseReq{}, &ChangesReq{}, &ChangesResp{}, &ChunksReq{},
		&ChunksResp{}, &ListReq{}, &ListResp{}, &NameReq{}, &VersionsResp{}, &RemoveReq{}, &RestoreReq{},
		&LookupReq{}, &CommitReq{}, &FetchReq{}, &CommitResp{}, &JoinReq{}, &JoinResp{}, &Version{}, &OriginReq{}}
}

func FuzzDecodeMessages(f *testing.F) {
	f.Add([]byte(`{"ids":["` + strings.Repeat("ab", 32) + `"]}`))
	f.Add([]byte(`{"after":1,"limit":10}`))
	f.Add([]byte(`{"changes":[{"seq":1,"version":{"origin":"x","vv":{"a":1}}}],"last":1}`))
	f.Add([]byte(`{"name":"a/b","chunks":[{"id":"` + strings.Repeat("00", 32) + `","plain":1,"stored":13}],"more":true}`))
	f.Add([]byte(`{"bits":[true,false]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range messages() {
			if err := DecodeBody(b, m); err != nil {
				continue
			}
			// What decodes must satisfy its caps and encode again.
			if v, ok := m.(interface{ Validate() error }); ok {
				if err := v.Validate(); err != nil {
					t.Fatalf("%T decoded but does not validate: %v", m, err)
				}
			}
			if _, err := json.Marshal(m); err != nil {
				t.Fatalf("%T decoded but does not encode: %v", m, err)
			}
		}
	})
}

func TestMessageCaps(t *testing.T) {
	ids := make([]store.ID, MaxIDs+1)
	b, _ := json.Marshal(IDList{IDs: ids})
	if err := DecodeBody(b, &IDList{}); err == nil {
		t.Fatal("an ID list over the cap decoded")
	}
	b, _ = json.Marshal(IDList{IDs: ids[:MaxIDs]})
	if err := DecodeBody(b, &IDList{}); err != nil {
		t.Fatalf("an ID list at the cap: %v", err)
	}
	if err := DecodeBody([]byte(`{"after":0,"limit":100000}`), &ChangesReq{}); err == nil {
		t.Fatal("a changes request over the page cap decoded")
	}
	long := strings.Repeat("x", MaxTextLen+1)
	b, _ = json.Marshal(NameReq{Name: long})
	if err := DecodeBody(b, &NameReq{}); err == nil {
		t.Fatal("a name over the text cap decoded")
	}
	// A page of changes is checked for its shape only: one change with a
	// name over every cap must not make the page, and the changes after it,
	// unreadable (each is checked where it is applied).
	b, _ = json.Marshal(ChangesResp{Changes: []Change{{Seq: 1, Version: Version{Name: strings.Repeat("n", 5000)}}, {Seq: 2}}, Last: 2})
	var page ChangesResp
	if err := DecodeBody(b, &page); err != nil || len(page.Changes) != 2 {
		t.Fatalf("a page holding one over-long name: %v", err)
	}
}
