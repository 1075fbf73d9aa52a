// Package s3 is loft's S3 gateway: an http.Handler that serves a node's
// repository over Amazon S3's REST API, path style, so that S3 clients
// (awscli, rclone, restic, boto3, ...) store and read loft objects.
//
// A bucket is a top-level directory of the catalog and a key the rest of
// an object's name: key "photos/a.jpg" of bucket "home" is the object
// "home/photos/a.jpg" that `loft ls` and `loft get` show, and the reverse.
// A key ending in "/" (a "folder" of the S3 consoles) is a directory
// entry. Keys must be names loft can store (names.Parse) and at most 1,024
// bytes; others are refused with the S3 error that says why. Every request
// is authenticated by package sigv4, and its body is read through the
// verifying reader sigv4 returns: nothing is committed before the body's
// signatures and checksums held to its end.
package s3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/fault"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/node"
	"github.com/loftstore/loft/s3/s3err"
	"github.com/loftstore/loft/s3/sigv4"
)

// Node is what the gateway uses of a node.
type Node interface {
	Catalog() *catalog.Catalog
	Put(ctx context.Context, paths []string, opts node.PutOptions) (node.PutResult, error)
	ReadVersion(ctx context.Context, v catalog.Version, off, length int64, w io.Writer) error
	Copy(ctx context.Context, from names.Name, num int64, to names.Name, opts node.CopyOptions) (catalog.Version, error)
	MakeDir(ctx context.Context, name names.Name) (catalog.Version, error)
	Delete(ctx context.Context, name names.Name) (catalog.Version, error)
	DropVersion(ctx context.Context, name names.Name, num int64) (catalog.Version, error)
	ReadChunks(ctx context.Context, label string, refs []catalog.ChunkRef, w io.Writer) error
}

// Options configure a Gateway.
type Options struct {
	// Region is what GetBucketLocation answers; requests signed for any
	// region are accepted (the secret is what proves the key).
	Region string
	// MaxObject caps the body of one PutObject (S3's is 5 GiB).
	MaxObject int64
	// BodyIdle is how long a request body may send nothing before the
	// request fails (a client that stopped mid-body); 0 means a minute.
	BodyIdle time.Duration
	// Ingest bounds the request bodies stored at once (PutObject,
	// UploadPart): each holds a put pipeline's buffers (~14 MiB), so the
	// gateway's memory does not grow with the uploads in flight; the
	// others wait, reading nothing. 0 means DefaultIngest.
	Ingest int
	Log    *slog.Logger
	Now    func() time.Time
}

// DefaultMaxObject is S3's own cap on a single PUT.
const DefaultMaxObject = 5 << 30

// DefaultIngest is how many request bodies are stored at once: enough to
// keep two cores busy, few enough for serve to stay under 128 MiB.
const DefaultIngest = 4

// Gateway serves S3 requests on a node's repository.
type Gateway struct {
	n      Node
	cat    *catalog.Catalog
	opts   Options
	verify *sigv4.Verifier
	ingest *semaphore.Weighted // Options.Ingest
	stats  struct{ requests, failed, in, out atomic.Int64 }
	// inflight counts the requests being served, which Serve waits for
	// before it returns (and the node may close).
	inflight sync.WaitGroup
}

// New returns a gateway for n.
func New(n Node, opts Options) *Gateway {
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.MaxObject <= 0 {
		opts.MaxObject = DefaultMaxObject
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.BodyIdle <= 0 {
		opts.BodyIdle = time.Minute
	}
	if opts.Ingest <= 0 {
		opts.Ingest = DefaultIngest
	}
	g := &Gateway{n: n, cat: n.Catalog(), opts: opts, ingest: semaphore.NewWeighted(int64(opts.Ingest))}
	g.verify = &sigv4.Verifier{Keys: keys{g.cat}, Now: opts.Now}
	return g
}

// keys gives sigv4 the secrets of the catalog's access keys.
type keys struct{ cat *catalog.Catalog }

func (k keys) Secret(ctx context.Context, id string) (string, error) {
	key, err := k.cat.Key(ctx, id)
	if errors.Is(err, catalog.ErrNotFound) {
		return "", fmt.Errorf("%s: %w", id, sigv4.ErrUnknownKey)
	}
	return key.Secret, err
}

// Stats are the gateway's counters since it started.
type Stats struct {
	Requests int64 `json:"requests"`
	Failed   int64 `json:"failed"`
	BytesIn  int64 `json:"bytes_in"`
	BytesOut int64 `json:"bytes_out"`
}

// Stats returns the gateway's counters.
func (g *Gateway) Stats() Stats {
	return Stats{Requests: g.stats.requests.Load(), Failed: g.stats.failed.Load(),
		BytesIn: g.stats.in.Load(), BytesOut: g.stats.out.Load()}
}

// request is one S3 request on its way through the gateway.
type request struct {
	*http.Request
	id     string
	bucket string // "" for the service
	key    string // "" for a bucket
	who    *catalog.AccessKey
	body   io.ReadCloser // verified, decoded
	length int64         // of body, -1 when not known
	signed *sigv4.Request
}

func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength == 0 && strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		// net/http sends "100 Continue" on the first read of a body, and
		// an empty one is never read. botocore (boto3 1.26), answered
		// without it, stalled the next request on the connection for its
		// 60-second read timeout: an empty PutObject made the next one
		// take a minute.
		w.WriteHeader(http.StatusContinue) // before the headers: a 1xx carries those set
	}
	g.inflight.Add(1)
	defer g.inflight.Done()
	g.stats.requests.Add(1)
	cw := &countingWriter{ResponseWriter: w, n: &g.stats.out}
	req := &request{Request: r, id: requestID()}
	cw.Header().Set("x-amz-request-id", req.id)
	cw.Header().Set("Server", "loft")
	err := g.serve(cw, req)
	if err != nil {
		g.stats.failed.Add(1)
		g.writeError(cw, req, err)
	}
	if req.body != nil {
		req.body.Close()
	}
}

func (g *Gateway) serve(w http.ResponseWriter, req *request) error {
	r := req.Request
	if err := splitPath(req); err != nil {
		return err
	}
	signed, err := g.verify.Verify(r.Context(), r)
	if err != nil {
		return err
	}
	req.signed = signed
	req.body = &countingReader{r: signed.Body, n: &g.stats.in, rc: http.NewResponseController(w), idle: g.opts.BodyIdle}
	req.length = signed.Length
	if signed.AccessKey != "" {
		k, err := g.cat.Key(r.Context(), signed.AccessKey)
		if err != nil {
			return s3err.Wrap(s3err.InvalidAccessKeyID, err, "the access key does not exist")
		}
		req.who = &k
	}
	return g.route(w, req)
}

// route dispatches a request by bucket, key, method and subresource.
func (g *Gateway) route(w http.ResponseWriter, req *request) error {
	q := req.URL.Query()
	has := func(k string) bool { _, ok := q[k]; return ok }
	m := req.Method
	switch {
	case req.bucket == "":
		if m == http.MethodGet {
			return g.listBuckets(w, req)
		}
	case req.key == "":
		for _, sub := range []string{"acl", "policy", "cors", "lifecycle", "tagging", "encryption", "website",
			"logging", "notification", "replication", "object-lock", "ownershipControls", "publicAccessBlock", "accelerate", "requestPayment"} {
			if has(sub) {
				return s3err.New(s3err.NotImplemented, "the bucket subresource %q is not implemented by loft", sub)
			}
		}
		switch {
		case m == http.MethodPut && has("versioning"):
			return g.putVersioning(w, req)
		case m == http.MethodPut:
			return g.createBucket(w, req)
		case m == http.MethodDelete:
			return g.deleteBucket(w, req)
		case m == http.MethodHead:
			return g.headBucket(w, req)
		case m == http.MethodGet && has("location"):
			return g.location(w, req)
		case m == http.MethodGet && has("versioning"):
			return g.getVersioning(w, req)
		case m == http.MethodGet && has("versions"):
			return g.listVersions(w, req)
		case m == http.MethodGet && has("uploads"):
			return g.listUploads(w, req)
		case m == http.MethodGet:
			return g.listObjects(w, req, q.Get("list-type") == "2")
		case m == http.MethodPost && has("delete"):
			return g.deleteObjects(w, req)
		case m == http.MethodPost:
			return s3err.New(s3err.NotImplemented, "browser uploads (POST Object with a form) are not implemented by loft")
		}
	default:
		for _, sub := range []string{"acl", "tagging", "retention", "legal-hold", "torrent", "restore", "select", "attributes"} {
			if has(sub) {
				return s3err.New(s3err.NotImplemented, "the object subresource %q is not implemented by loft", sub)
			}
		}
		switch {
		case has("uploadId") || has("uploads"):
			return g.multipart(w, req)
		case m == http.MethodPut && req.Header.Get("x-amz-copy-source") != "":
			return g.copyObject(w, req)
		case m == http.MethodPut:
			return g.putObject(w, req)
		case m == http.MethodGet || m == http.MethodHead:
			return g.getObject(w, req, m == http.MethodHead)
		case m == http.MethodDelete:
			return g.deleteObject(w, req)
		}
	}
	return s3err.New(s3err.MethodNotAllowed, "%s is not allowed on this resource", m)
}

// writeError sends err as S3's XML error body (a HEAD gets the status only).
func (g *Gateway) writeError(w http.ResponseWriter, req *request, err error) {
	e := toS3(err, req.key != "")
	if e.Code == s3err.InternalError || e.Code == s3err.InsufficientStorage {
		g.opts.Log.Warn("s3 request failed", "method", req.Method, "path", req.URL.Path, "err", err, "request", req.id)
	} else {
		g.opts.Log.Debug("s3 request refused", "method", req.Method, "path", req.URL.Path, "err", err, "request", req.id)
	}
	status := e.Code.Status()
	if status == http.StatusNotModified || req.Method == http.MethodHead {
		w.WriteHeader(status) // no body
		return
	}
	body := errorBody{Code: string(e.Code), Message: e.Message, Resource: req.URL.Path, RequestID: req.id}
	writeXMLStatus(w, status, body)
}

// toS3 turns any error into an S3 error, by its fault kind when it is not
// one already. object says whether the request named a key (a NotFound
// is NoSuchKey then, else NoSuchBucket).
func toS3(err error, object bool) *s3err.Error {
	if e, ok := s3err.As(err); ok {
		return e
	}
	code := s3err.InternalError
	switch fault.Of(err) {
	case fault.NotFound, fault.Deleted:
		code = s3err.NoSuchBucket
		if object {
			code = s3err.NoSuchKey
		}
	case fault.Invalid:
		code = s3err.InvalidArgument
	case fault.TooLarge:
		code = s3err.EntityTooLarge
	case fault.Denied:
		code = s3err.AccessDenied
	case fault.NoSpace:
		code = s3err.InsufficientStorage
	case fault.Busy:
		code = s3err.SlowDown
	case fault.Interrupted:
		code = s3err.ServiceUnavailable
	}
	return s3err.Wrap(code, err, "%s", oneLine(err))
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }

func writeXML(w http.ResponseWriter, v any) { writeXMLStatus(w, http.StatusOK, v) }

func writeXMLStatus(w http.ResponseWriter, status int, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	io.WriteString(w, xml.Header)
	w.Write(b)
}

func requestID() string {
	var b [8]byte
	rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// Flush passes a flush on, for the responses that keep a client waiting
// (a long copy) and send whitespace meanwhile.
func (c *countingWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// countingReader counts a body's bytes and gives each read a deadline, so
// that a client that stops sending ends its request instead of holding
// it open for ever.
type countingReader struct {
	r    io.ReadCloser
	n    *atomic.Int64
	rc   *http.ResponseController
	idle time.Duration
}

func (c *countingReader) Read(p []byte) (int, error) {
	_ = c.rc.SetReadDeadline(time.Now().Add(c.idle)) // not every writer supports it (tests' recorders)
	n, err := c.r.Read(p)
	if err == io.EOF {
		// The body is over: a deadline left behind would end the request
		// (net/http reads on in the background, and cancels it when that
		// read times out) while a long operation on the body, a multipart
		// completion, still runs. (After a failed read it stays: net/http
		// reads what is left of a body before it answers, and a client
		// that stopped sending would hold the answer for ever.)
		_ = c.rc.SetReadDeadline(time.Time{})
	}
	c.n.Add(int64(n))
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }

// Unwrap lets http.ResponseController reach the connection's writer.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
