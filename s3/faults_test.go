package s3_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/gc"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/node"
	"github.com/loftstore/loft/s3"
	"github.com/loftstore/loft/store"
)

// signedRequest makes a request signed for k with the SDK's signer, the
// body's SHA-256 as its payload hash.
func signedRequest(t *testing.T, k catalog.AccessKey, method, url string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("x-amz-content-sha256", hash)
	err = v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).SignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: k.ID, SecretAccessKey: k.Secret}, req, hash, "s3", "us-east-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// s3Error sends req and returns the status and the S3 error code of the
// answer.
func s3Error(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	code := ""
	if i := bytes.Index(b, []byte("<Code>")); i >= 0 {
		rest := b[i+6:]
		code = string(rest[:bytes.IndexByte(rest, '<')])
	}
	return resp.StatusCode, code
}

func mustBucket(t *testing.T, c *awss3.Client, b string) {
	t.Helper()
	if _, err := c.CreateBucket(context.Background(), &awss3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
		t.Fatal(err)
	}
}

// absent fails unless bucket/key has no version at all: nothing of a
// refused request was committed.
func absent(t *testing.T, n *node.Node, name string) {
	t.Helper()
	if vs, err := n.Versions(context.Background(), names.Must(name)); err == nil && len(vs) > 0 {
		t.Fatalf("%s has %d versions after a refused request", name, len(vs))
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t)
	c := e.client(e.admin)
	ctx := context.Background()
	mustBucket(t, c, "faults")

	// Malformed XML.
	for _, body := range []string{"<Delete><Object><Key>a</Key>", "not xml", `<Delete></Delete>`} {
		status, code := s3Error(t, signedRequest(t, e.admin, http.MethodPost, e.srv.URL+"/faults?delete", []byte(body)))
		if status != http.StatusBadRequest || code != "MalformedXML" {
			t.Fatalf("delete with body %q: %d %s, want 400 MalformedXML", body, status, code)
		}
	}

	// A wrong Content-MD5 commits nothing.
	_, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("faults"), Key: aws.String("md5"),
		Body: strings.NewReader("payload"), ContentMD5: aws.String("1B2M2Y8AsgTpgAmY7PhCfg==")})
	wantCode(t, "wrong Content-MD5", err, "BadDigest")
	absent(t, e.n, "faults/md5")

	// A body that does not match its signed hash commits nothing.
	req := signedRequest(t, e.admin, http.MethodPut, e.srv.URL+"/faults/hash", []byte("signed body"))
	req.Body = io.NopCloser(strings.NewReader("other body!"))
	if status, code := s3Error(t, req); code != "XAmzContentSHA256Mismatch" {
		t.Fatalf("tampered body: %d %s", status, code)
	}
	absent(t, e.n, "faults/hash")

	// No signature at all, or a made-up one.
	req = signedRequest(t, e.admin, http.MethodPut, e.srv.URL+"/faults/anon", []byte("x"))
	req.Header.Del("Authorization")
	if status, code := s3Error(t, req); status != http.StatusForbidden || code != "AccessDenied" {
		t.Fatalf("anonymous put: %d %s", status, code)
	}
	req = signedRequest(t, e.admin, http.MethodPut, e.srv.URL+"/faults/forged", []byte("x"))
	auth := req.Header.Get("Authorization")
	flip := map[byte]byte{'0': '1'}
	last := auth[len(auth)-1]
	if b, ok := flip[last]; ok {
		last = b
	} else {
		last = '0'
	}
	req.Header.Set("Authorization", auth[:len(auth)-1]+string(last))
	if status, code := s3Error(t, req); status != http.StatusForbidden || code != "SignatureDoesNotMatch" {
		t.Fatalf("forged signature: %d %s", status, code)
	}
	absent(t, e.n, "faults/anon")
	absent(t, e.n, "faults/forged")
}

// TestBodyLimits: a client that stops sending mid-body and one that sends
// for ever each end their own request with an error and commit nothing;
// the gateway meanwhile answers others.
func TestBodyLimits(t *testing.T) {
	ctx := context.Background()
	e := newEnvWith(t, node.Options{}, s3.Options{MaxObject: 1 << 20, BodyIdle: 300 * time.Millisecond})
	n := e.n
	c := e.client(e.admin)
	mustBucket(t, c, "limits")

	// Stops sending: headers of a 1000-byte body, then 10 bytes and silence.
	body := bytes.Repeat([]byte("s"), 1000)
	req := signedRequest(t, e.admin, http.MethodPut, e.srv.URL+"/limits/stalled", body)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var head bytes.Buffer
	fmt.Fprintf(&head, "PUT /limits/stalled HTTP/1.1\r\nHost: %s\r\nContent-Length: 1000\r\n", req.Host)
	for k, vs := range req.Header {
		fmt.Fprintf(&head, "%s: %s\r\n", k, vs[0])
	}
	head.WriteString("\r\n")
	conn.Write(head.Bytes())
	conn.Write(body[:10])
	// Meanwhile another client is served.
	if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("limits"), Key: aws.String("other"), Body: strings.NewReader("fine")}); err != nil {
		t.Fatalf("a put beside a stalled one: %v", err)
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second)) // a bound, far above BodyIdle
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the stalled request was not ended by the gateway")
	}
	if err == nil {
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(answer, []byte("IncompleteBody")) {
			t.Fatalf("a stalled body got %d %.400q", resp.StatusCode, answer)
		}
	} // else the gateway closed the connection without an answer: ended too
	absent(t, n, "limits/stalled")

	// Sends for ever (chunked, no length): refused past MaxObject.
	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	wg.Go(func() {
		chunk := bytes.Repeat([]byte("f"), 64<<10)
		for range 1000 { // 64 MiB at most: far past the 1 MiB cap
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		pw.Close()
	})
	freq, _ := http.NewRequest(http.MethodPut, e.srv.URL+"/limits/forever", pr)
	freq.Header.Set("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
	if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: e.admin.ID, SecretAccessKey: e.admin.Secret},
		freq, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	status, code := s3Error(t, freq)
	pr.CloseWithError(io.ErrClosedPipe)
	wg.Wait()
	if status != http.StatusBadRequest || code != "EntityTooLarge" {
		t.Fatalf("an endless body: %d %s, want 400 EntityTooLarge", status, code)
	}
	absent(t, n, "limits/forever")
	rep, err := n.Check(ctx, gc.CheckOptions{ReadData: true})
	if err != nil || rep.Unrepaired() > 0 {
		t.Fatalf("check: %+v, %v", rep.Findings, err)
	}
}

// fullDisk fails chunk writes with ENOSPC once its budget is spent.
type fullDisk struct {
	mu   sync.Mutex
	left int64
}

type enospcFile struct {
	*os.File
	d *fullDisk
}

func (f enospcFile) Write(p []byte) (int, error) {
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	if int64(len(p)) > f.d.left {
		f.d.left = 0
		return 0, &fs.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	f.d.left -= int64(len(p))
	return f.File.Write(p)
}

func (d *fullDisk) create(dir, pattern string) (store.TempFile, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return enospcFile{f, d}, nil
}

// TestFullDisk: a PUT that meets a full disk is refused with S3's
// InsufficientStorage and leaves nothing half-committed; with room again
// the same PUT succeeds.
func TestFullDisk(t *testing.T) {
	ctx := context.Background()
	full := &fullDisk{left: 1 << 40}
	e := newEnvWith(t, node.Options{CreateTemp: full.create, SmallMax: -1}, s3.Options{})
	n := e.n
	c := e.client(e.admin)
	mustBucket(t, c, "disk")
	full.mu.Lock()
	full.left = 300 << 10
	full.mu.Unlock()
	data := make([]byte, 3<<20) // several chunks, incompressible
	rand.NewChaCha8([32]byte{1}).Read(data)
	_, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("disk"), Key: aws.String("f"), Body: bytes.NewReader(data)})
	wantCode(t, "put on a full disk", err, "InsufficientStorage")
	absent(t, n, "disk/f")
	rep, err := n.Check(ctx, gc.CheckOptions{ReadData: true})
	if err != nil || rep.Unrepaired() > 0 {
		t.Fatalf("check after the full disk: %+v, %v", rep.Findings, err)
	}
	full.mu.Lock()
	full.left = 1 << 40
	full.mu.Unlock()
	if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("disk"), Key: aws.String("f"), Body: bytes.NewReader(data)}); err != nil {
		t.Fatalf("put with room again: %v", err)
	}
	got, _ := get(t, c, "disk", "f")
	if !bytes.Equal(got, data) {
		t.Fatal("the object differs")
	}
}
