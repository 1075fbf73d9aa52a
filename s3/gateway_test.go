package s3_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/gc"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/node"
	"github.com/loftstore/loft/s3"
)

// env is a gateway on a real repository, served on 127.0.0.1.
type env struct {
	n     *node.Node
	dir   string // the repository
	srv   *httptest.Server
	admin catalog.AccessKey
}

func newEnv(t *testing.T) *env { t.Helper(); return newEnvWith(t, node.Options{}, s3.Options{}) }

// newEnvWith is newEnv with options for the node and the gateway.
func newEnvWith(t *testing.T, nopts node.Options, gopts s3.Options) *env {
	t.Helper()
	dir := t.TempDir()
	n, err := node.Init(context.Background(), dir, node.InitOptions{}, nopts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	e := &env{n: n, dir: dir}
	e.admin = e.key(t, "admin", catalog.Grant{Bucket: "*", Access: catalog.AccessAdmin})
	e.srv = httptest.NewServer(s3.New(n, gopts))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) key(t *testing.T, name string, grants ...catalog.Grant) catalog.AccessKey {
	t.Helper()
	k := s3.NewKey(name, grants, time.Now())
	if err := e.n.Catalog().AddKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return k
}

func (e *env) client(k catalog.AccessKey) *awss3.Client {
	return awss3.New(awss3.Options{
		BaseEndpoint: aws.String(e.srv.URL),
		UsePathStyle: true,
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(k.ID, k.Secret, ""),
		Retryer:      aws.NopRetryer{},
	})
}

// code returns the S3 error code of err ("" for none).
func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err != nil {
		return "not an API error: " + err.Error()
	}
	return ""
}

func wantCode(t *testing.T, what string, err error, want string) {
	t.Helper()
	if got := code(err); got != want {
		t.Fatalf("%s: error code %q, want %q (%v)", what, got, want, err)
	}
}

func get(t *testing.T, c *awss3.Client, bucket, key string) ([]byte, *awss3.GetObjectOutput) {
	t.Helper()
	out, err := c.GetObject(context.Background(), &awss3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("get %s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b, out
}

func TestObjectsRoundTrip(t *testing.T) {
	e := newEnv(t)
	c := e.client(e.admin)
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("photos")}); err != nil {
		t.Fatal(err)
	}
	_, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("photos")})
	wantCode(t, "create twice", err, "BucketAlreadyOwnedByYou")
	_, err = c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("Bad_Name")})
	wantCode(t, "bad bucket name", err, "InvalidBucketName")

	data := bytes.Repeat([]byte("loft s3 "), 200_000) // 1.6 MB: several chunks
	sum := md5.Sum(data)
	put, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("photos"), Key: aws.String("2026/a b+c.txt"),
		Body: bytes.NewReader(data), ContentType: aws.String("text/plain"),
		Metadata: map[string]string{"Camera": "x100"}, CacheControl: aws.String("max-age=60")})
	if err != nil {
		t.Fatal(err)
	}
	if want := `"` + hex.EncodeToString(sum[:]) + `"`; aws.ToString(put.ETag) != want {
		t.Fatalf("put ETag %s, want %s", aws.ToString(put.ETag), want)
	}
	got, out := get(t, c, "photos", "2026/a b+c.txt")
	if !bytes.Equal(got, data) {
		t.Fatalf("get returned %d bytes, not the %d put", len(got), len(data))
	}
	if aws.ToString(out.ContentType) != "text/plain" || out.Metadata["camera"] != "x100" || aws.ToString(out.CacheControl) != "max-age=60" {
		t.Fatalf("get headers: type %q, meta %v, cache %q", aws.ToString(out.ContentType), out.Metadata, aws.ToString(out.CacheControl))
	}

	// The object is the catalog's photos/2026/a b+c.txt, as the CLI sees it.
	v, err := e.n.Catalog().Head(ctx, names.Must("photos/2026/a b+c.txt"))
	if err != nil || v.Size != int64(len(data)) {
		t.Fatalf("catalog head: %+v, %v", v, err)
	}

	// Ranges.
	for _, tc := range []struct {
		rng      string
		from, to int
	}{{"bytes=0-9", 0, 10}, {"bytes=1000000-", 1000000, len(data)}, {"bytes=-5", len(data) - 5, len(data)},
		{"bytes=1599990-1700000", 1599990, len(data)}} {
		out, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("photos"), Key: aws.String("2026/a b+c.txt"), Range: aws.String(tc.rng)})
		if err != nil {
			t.Fatalf("range %s: %v", tc.rng, err)
		}
		b, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if !bytes.Equal(b, data[tc.from:tc.to]) {
			t.Fatalf("range %s: %d bytes, want %d from %d", tc.rng, len(b), tc.to-tc.from, tc.from)
		}
	}
	_, err = c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("photos"), Key: aws.String("2026/a b+c.txt"), Range: aws.String("bytes=2000000-")})
	wantCode(t, "range past the end", err, "InvalidRange")

	// Conditions.
	_, err = c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("photos"), Key: aws.String("2026/a b+c.txt"), IfMatch: aws.String(`"nope"`)})
	wantCode(t, "If-Match", err, "PreconditionFailed")
	_, err = c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("photos"), Key: aws.String("2026/a b+c.txt"), IfNoneMatch: put.ETag})
	if code(err) != "NotModified" && !strings.Contains(fmt.Sprint(err), "304") {
		t.Fatalf("If-None-Match with the ETag: %v, want 304", err)
	}

	// Copy shares the chunks and keeps the metadata.
	if _, err := c.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: aws.String("photos"), Key: aws.String("copy.txt"),
		CopySource: aws.String("photos/2026/a%20b%2Bc.txt")}); err != nil {
		t.Fatal(err)
	}
	got, out = get(t, c, "photos", "copy.txt")
	if !bytes.Equal(got, data) || out.Metadata["camera"] != "x100" {
		t.Fatalf("copy: %d bytes, meta %v", len(got), out.Metadata)
	}

	// Missing things.
	_, err = c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("photos"), Key: aws.String("nothing")})
	wantCode(t, "missing key", err, "NoSuchKey")
	_, err = c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("nobucket"), Key: aws.String("x")})
	wantCode(t, "missing bucket", err, "NoSuchBucket")

	// Keys loft cannot store.
	for key, want := range map[string]string{"a/../b": "InvalidArgument", "a//b": "InvalidArgument", strings.Repeat("k", 1025): "KeyTooLongError"} {
		_, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("photos"), Key: aws.String(key), Body: strings.NewReader("x")})
		wantCode(t, "put "+clipKey(key), err, want)
	}

	// Delete: a delete marker, then the bucket empties.
	_, err = c.DeleteBucket(ctx, &awss3.DeleteBucketInput{Bucket: aws.String("photos")})
	wantCode(t, "delete a bucket with objects", err, "BucketNotEmpty")
	if _, err := c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String("photos"), Key: aws.String("copy.txt")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("photos"), Key: aws.String("copy.txt")})
	wantCode(t, "get deleted", err, "NoSuchKey")
	del, err := c.DeleteObjects(ctx, &awss3.DeleteObjectsInput{Bucket: aws.String("photos"), Delete: &types.Delete{
		Objects: []types.ObjectIdentifier{{Key: aws.String("2026/a b+c.txt")}, {Key: aws.String("never")}, {Key: aws.String("x/../y")}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(del.Deleted) != 2 || len(del.Errors) != 1 || aws.ToString(del.Errors[0].Code) != "InvalidArgument" {
		t.Fatalf("delete objects: %d deleted, errors %+v", len(del.Deleted), del.Errors)
	}
	vs, err := c.ListObjectVersions(ctx, &awss3.ListObjectVersionsInput{Bucket: aws.String("photos")})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs.Versions) != 2 || len(vs.DeleteMarkers) != 2 {
		t.Fatalf("versions: %d versions, %d delete markers, want 2 and 2", len(vs.Versions), len(vs.DeleteMarkers))
	}
	// An old version is restored by copying it onto its own key.
	first := vs.Versions[len(vs.Versions)-1]
	if _, err := c.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: aws.String("photos"), Key: first.Key,
		CopySource: aws.String("photos/" + url.PathEscape(aws.ToString(first.Key)) + "?versionId=" + aws.ToString(first.VersionId))}); err != nil {
		t.Fatalf("restore by copy: %v", err)
	}
	if got, _ := get(t, c, "photos", aws.ToString(first.Key)); !bytes.Equal(got, data) {
		t.Fatalf("restored %s: %d bytes", aws.ToString(first.Key), len(got))
	}
	if _, err := c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String("photos"), Key: first.Key}); err != nil {
		t.Fatal(err)
	}
	// An old version reads back by its ID.
	old := vs.Versions[0]
	out2, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("photos"), Key: old.Key, VersionId: old.VersionId})
	if err != nil {
		t.Fatalf("get version %s of %s: %v", aws.ToString(old.VersionId), aws.ToString(old.Key), err)
	}
	b, _ := io.ReadAll(out2.Body)
	out2.Body.Close()
	if !bytes.Equal(b, data) {
		t.Fatalf("old version: %d bytes", len(b))
	}
	if _, err := c.DeleteBucket(ctx, &awss3.DeleteBucketInput{Bucket: aws.String("photos")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: aws.String("photos")})
	if err == nil {
		t.Fatal("head of a deleted bucket succeeded")
	}
	rep, err := e.n.Check(ctx, gc.CheckOptions{ReadData: true})
	if err != nil || rep.Unrepaired() > 0 {
		t.Fatalf("check after the S3 session: %+v, %v", rep.Findings, err)
	}
}

func clipKey(k string) string {
	if len(k) > 20 {
		return k[:20] + "…"
	}
	return k
}

func TestListing(t *testing.T) {
	e := newEnv(t)
	c := e.client(e.admin)
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("docs")}); err != nil {
		t.Fatal(err)
	}
	keys := []string{"a.txt", "b/1", "b/2", "b/c/3", "b.txt", "c+d", "dir/", "dir/x", "e f"}
	for _, k := range keys {
		if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("docs"), Key: aws.String(k), Body: strings.NewReader("")}); err != nil {
			t.Fatalf("put %q: %v", k, err)
		}
	}
	// Page through everything, two keys a page.
	var all []string
	var token *string
	for range 20 {
		out, err := c.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String("docs"), MaxKeys: aws.Int32(2), ContinuationToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range out.Contents {
			all = append(all, aws.ToString(o.Key))
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		token = out.NextContinuationToken
	}
	if got, want := strings.Join(all, ","), "a.txt,b.txt,b/1,b/2,b/c/3,c+d,dir/,dir/x,e f"; got != want {
		t.Fatalf("paged listing:\n got %s\nwant %s", got, want)
	}
	// One level, with common prefixes.
	out, err := c.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String("docs"), Delimiter: aws.String("/")})
	if err != nil {
		t.Fatal(err)
	}
	var level []string
	for _, o := range out.Contents {
		level = append(level, aws.ToString(o.Key))
	}
	for _, p := range out.CommonPrefixes {
		level = append(level, aws.ToString(p.Prefix))
	}
	if got, want := strings.Join(level, ","), "a.txt,b.txt,c+d,e f,b/,dir/"; got != want {
		t.Fatalf("delimited listing:\n got %s\nwant %s", got, want)
	}
	// A prefix inside a segment.
	v1, err := c.ListObjects(ctx, &awss3.ListObjectsInput{Bucket: aws.String("docs"), Prefix: aws.String("b"), Delimiter: aws.String("/")})
	if err != nil {
		t.Fatal(err)
	}
	if len(v1.Contents) != 1 || aws.ToString(v1.Contents[0].Key) != "b.txt" || len(v1.CommonPrefixes) != 1 || aws.ToString(v1.CommonPrefixes[0].Prefix) != "b/" {
		t.Fatalf("prefix b: %d keys, %d prefixes", len(v1.Contents), len(v1.CommonPrefixes))
	}
	// A prefix that is a folder key lists the folder too.
	fo, err := c.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String("docs"), Prefix: aws.String("dir/")})
	if err != nil {
		t.Fatal(err)
	}
	if len(fo.Contents) != 2 || aws.ToString(fo.Contents[0].Key) != "dir/" || aws.ToString(fo.Contents[1].Key) != "dir/x" {
		t.Fatalf("prefix dir/: %d keys", len(fo.Contents))
	}
	// What the command line puts is in the bucket too.
	if _, err := e.n.Put(ctx, []string{"-"}, node.PutOptions{As: names.Must("docs/from-cli"), Stdin: strings.NewReader("cli")}); err != nil {
		t.Fatal(err)
	}
	b, o := get(t, c, "docs", "from-cli")
	if string(b) != "cli" || !strings.HasSuffix(aws.ToString(o.ETag), `-1"`) {
		t.Fatalf("a CLI object over S3: %q, ETag %s", b, aws.ToString(o.ETag))
	}
}

func TestAccess(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := e.client(e.admin)
	for _, b := range []string{"open", "closed"} {
		if _, err := admin.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("k"), Body: strings.NewReader(b)}); err != nil {
			t.Fatal(err)
		}
	}
	reader := e.client(e.key(t, "reader", catalog.Grant{Bucket: "open", Access: catalog.AccessRead}))
	get(t, reader, "open", "k")
	_, err := reader.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("closed"), Key: aws.String("k")})
	wantCode(t, "read without a grant", err, "AccessDenied")
	_, err = reader.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("open"), Key: aws.String("k2"), Body: strings.NewReader("x")})
	wantCode(t, "write with a read grant", err, "AccessDenied")
	lb, err := reader.ListBuckets(ctx, &awss3.ListBucketsInput{})
	if err != nil || len(lb.Buckets) != 1 || aws.ToString(lb.Buckets[0].Name) != "open" {
		t.Fatalf("a reader's buckets: %+v, %v", lb, err)
	}

	wrong := e.admin
	wrong.Secret = strings.Repeat("x", 40)
	_, err = e.client(wrong).ListBuckets(ctx, &awss3.ListBucketsInput{})
	wantCode(t, "wrong secret", err, "SignatureDoesNotMatch")
	unknown := e.admin
	unknown.ID = "LKNOSUCHKEY0000000000"
	_, err = e.client(unknown).ListBuckets(ctx, &awss3.ListBucketsInput{})
	wantCode(t, "unknown key", err, "InvalidAccessKeyId")

	// Anonymous: refused, until the bucket is public-read.
	anon := func(path string) int {
		resp, err := http.Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := anon("/open/k"); s != http.StatusForbidden {
		t.Fatalf("anonymous get of a private bucket: %d", s)
	}
	if err := e.n.Catalog().SetBucket(ctx, catalog.BucketSettings{Name: "open", Policy: catalog.PolicyPublicRead}); err != nil {
		t.Fatal(err)
	}
	if s := anon("/open/k"); s != http.StatusOK {
		t.Fatalf("anonymous get of a public-read bucket: %d", s)
	}
	if s := anon("/closed/k"); s != http.StatusForbidden {
		t.Fatalf("anonymous get of the other bucket: %d", s)
	}

	// A presigned GET works until it expires.
	ps := awss3.NewPresignClient(admin)
	req, err := ps.PresignGetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("closed"), Key: aws.String("k")},
		awss3.WithPresignExpires(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(req.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "closed" {
		t.Fatalf("presigned get: %d %q", resp.StatusCode, body)
	}
	resp, err = http.Get(strings.Replace(req.URL, "/closed/k", "/closed/k2", 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("presigned URL for another key: %d", resp.StatusCode)
	}
}

// TestMultipart: parts arrive in any order and survive a restart of the
// node (the upload resumes with the parts already there); completion
// makes one object with S3's multipart ETag whose parts read back by
// number; an idle upload is aborted and gc takes its data.
func TestMultipart(t *testing.T) {
	ctx := context.Background()
	e := newEnvWith(t, node.Options{}, s3.Options{})
	n, dir := e.n, e.dir
	c := e.client(e.admin)
	if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("big")}); err != nil {
		t.Fatal(err)
	}
	parts := [][]byte{bytes.Repeat([]byte("1"), 5<<20), bytes.Repeat([]byte("two"), 2<<20), []byte("three")}
	up, err := c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String("big"), Key: aws.String("obj"),
		ContentType: aws.String("video/x"), Metadata: map[string]string{"take": "2"}})
	if err != nil {
		t.Fatal(err)
	}
	tags := make([]string, len(parts))
	putPart := func(c *awss3.Client, i int) {
		t.Helper()
		out, err := c.UploadPart(ctx, &awss3.UploadPartInput{Bucket: aws.String("big"), Key: aws.String("obj"), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(parts[i])})
		if err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
		tags[i] = aws.ToString(out.ETag)
	}
	putPart(c, 2)
	putPart(c, 0)
	// The node stops and starts again: the parts are still there.
	e.srv.Close()
	n.Close()
	n, err = node.Open(ctx, dir, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	e.n = n
	e.srv = httptest.NewServer(s3.New(n, s3.Options{}))
	t.Cleanup(e.srv.Close)
	c = e.client(e.admin)
	lp, err := c.ListParts(ctx, &awss3.ListPartsInput{Bucket: aws.String("big"), Key: aws.String("obj"), UploadId: up.UploadId})
	if err != nil || len(lp.Parts) != 2 || aws.ToInt32(lp.Parts[0].PartNumber) != 1 {
		t.Fatalf("parts after a restart: %+v, %v", lp, err)
	}
	putPart(c, 1)
	lu, err := c.ListMultipartUploads(ctx, &awss3.ListMultipartUploadsInput{Bucket: aws.String("big")})
	if err != nil || len(lu.Uploads) != 1 || aws.ToString(lu.Uploads[0].UploadId) != aws.ToString(up.UploadId) {
		t.Fatalf("uploads: %+v, %v", lu, err)
	}
	var completed []types.CompletedPart
	for i := range parts {
		completed = append(completed, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: aws.String(tags[i])})
	}
	done, err := c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: aws.String("big"), Key: aws.String("obj"),
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: completed}})
	if err != nil {
		t.Fatal(err)
	}
	h := md5.New()
	for _, p := range parts {
		s := md5.Sum(p)
		h.Write(s[:])
	}
	if want := fmt.Sprintf(`"%x-3"`, h.Sum(nil)); aws.ToString(done.ETag) != want {
		t.Fatalf("ETag %s, want %s", aws.ToString(done.ETag), want)
	}
	whole := bytes.Join(parts, nil)
	got, out := get(t, c, "big", "obj")
	if !bytes.Equal(got, whole) || aws.ToString(out.ContentType) != "video/x" || out.Metadata["take"] != "2" {
		t.Fatalf("completed object: %d bytes (want %d), type %q, meta %v", len(got), len(whole), aws.ToString(out.ContentType), out.Metadata)
	}
	p2, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("big"), Key: aws.String("obj"), PartNumber: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(p2.Body)
	p2.Body.Close()
	if !bytes.Equal(b, parts[1]) || aws.ToInt32(p2.PartsCount) != 3 {
		t.Fatalf("part 2: %d bytes, parts count %d", len(b), aws.ToInt32(p2.PartsCount))
	}

	// An upload left idle past multipart-expiry is aborted; gc takes its data.
	idle, err := c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String("big"), Key: aws.String("idle")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UploadPart(ctx, &awss3.UploadPartInput{Bucket: aws.String("big"), Key: aws.String("idle"), UploadId: idle.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader(bytes.Repeat([]byte("idle data "), 100_000))}); err != nil {
		t.Fatal(err)
	}
	later := s3.New(n, s3.Options{Now: func() time.Time { return time.Now().Add(25 * time.Hour) }})
	if err := later.ExpireUploads(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = c.UploadPart(ctx, &awss3.UploadPartInput{Bucket: aws.String("big"), Key: aws.String("idle"), UploadId: idle.UploadId,
		PartNumber: aws.Int32(2), Body: strings.NewReader("more")})
	wantCode(t, "a part of an expired upload", err, "NoSuchUpload")
	res, err := n.GC(ctx, node.GCOptions{Grace: 0})
	if err != nil || res.Chunks == 0 {
		t.Fatalf("gc after the expiry collected %d chunks, %v", res.Chunks, err)
	}
	got, _ = get(t, c, "big", "obj")
	if !bytes.Equal(got, whole) {
		t.Fatal("the completed object changed after gc")
	}
	rep, err := n.Check(ctx, gc.CheckOptions{ReadData: true})
	if err != nil || rep.Unrepaired() > 0 {
		t.Fatalf("check: %+v, %v", rep.Findings, err)
	}
}

// TestPagingAroundFolders: a folder's entry (key "b/") is stored as the
// name "b", which sorts before "b.txt" while the key sorts after it;
// listings still come in key order, and pages of one key each give every
// key and common prefix exactly once, in V1 (NextMarker), V2 (tokens) and
// the listing of versions. Deleting "b.txt/" does not delete the file
// "b.txt".
func TestPagingAroundFolders(t *testing.T) {
	e := newEnv(t)
	c := e.client(e.admin)
	ctx := context.Background()
	mustBucket(t, c, "paging")
	for _, k := range []string{"a", "b/", "b.txt", "b/x", "b/y/z", "c"} {
		if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("paging"), Key: aws.String(k), Body: strings.NewReader("")}); err != nil {
			t.Fatalf("put %q: %v", k, err)
		}
	}
	const want = "a,b.txt,b/,c" // S3's order: "." sorts before "/"
	one, slash := aws.Int32(1), aws.String("/")
	names := func(prefixes []types.CommonPrefix, keys ...*string) []string {
		var out []string
		for _, k := range keys {
			out = append(out, aws.ToString(k))
		}
		for _, p := range prefixes {
			out = append(out, aws.ToString(p.Prefix))
		}
		return out
	}
	v1 := listPages(t, "V1", func(marker *string) ([]string, *string, bool) {
		out, err := c.ListObjects(ctx, &awss3.ListObjectsInput{Bucket: aws.String("paging"), Delimiter: slash, MaxKeys: one, Marker: marker})
		if err != nil {
			t.Fatal(err)
		}
		var keys []*string
		for _, o := range out.Contents {
			keys = append(keys, o.Key)
		}
		return names(out.CommonPrefixes, keys...), out.NextMarker, aws.ToBool(out.IsTruncated)
	})
	v2 := listPages(t, "V2", func(token *string) ([]string, *string, bool) {
		out, err := c.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String("paging"), Delimiter: slash, MaxKeys: one, ContinuationToken: token})
		if err != nil {
			t.Fatal(err)
		}
		var keys []*string
		for _, o := range out.Contents {
			keys = append(keys, o.Key)
		}
		return names(out.CommonPrefixes, keys...), out.NextContinuationToken, aws.ToBool(out.IsTruncated)
	})
	vs := listPages(t, "versions", func(keyMarker *string) ([]string, *string, bool) {
		out, err := c.ListObjectVersions(ctx, &awss3.ListObjectVersionsInput{Bucket: aws.String("paging"), Delimiter: slash, MaxKeys: one, KeyMarker: keyMarker})
		if err != nil {
			t.Fatal(err)
		}
		var keys []*string
		for _, v := range out.Versions {
			keys = append(keys, v.Key)
		}
		return names(out.CommonPrefixes, keys...), out.NextKeyMarker, aws.ToBool(out.IsTruncated)
	})
	for _, l := range []struct {
		what string
		got  []string
	}{{"V1", v1}, {"V2", v2}, {"versions", vs}} {
		if got := strings.Join(l.got, ","); got != want {
			t.Fatalf("%s, pages of one: %s, want %s", l.what, got, want)
		}
	}

	if _, err := c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String("paging"), Key: aws.String("b.txt/")}); err != nil {
		t.Fatal(err)
	}
	get(t, c, "paging", "b.txt") // still there
}

// TestChecksums: the checksum a client sends with a PUT is kept and sent
// back (on the PUT, and on a GET or HEAD that asks for it, of the whole
// object only); a copy keeps it, as the content is the same.
func TestChecksums(t *testing.T) {
	e := newEnv(t)
	c := e.client(e.admin)
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("sums")}); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("checksummed "), 1000)
	sum := sha256.Sum256(data)
	want := base64.StdEncoding.EncodeToString(sum[:])
	put, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("sums"), Key: aws.String("a.txt"),
		Body: bytes.NewReader(data), ChecksumAlgorithm: types.ChecksumAlgorithmSha256})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(put.ChecksumSHA256) != want {
		t.Errorf("PUT answered SHA-256 %q, want %q", aws.ToString(put.ChecksumSHA256), want)
	}
	head := func(key string, mode bool) *awss3.HeadObjectOutput {
		t.Helper()
		in := &awss3.HeadObjectInput{Bucket: aws.String("sums"), Key: aws.String(key)}
		if mode {
			in.ChecksumMode = types.ChecksumModeEnabled
		}
		out, err := c.HeadObject(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if h := head("a.txt", true); aws.ToString(h.ChecksumSHA256) != want || h.ChecksumType != types.ChecksumTypeFullObject {
		t.Errorf("HEAD asking for the checksum: %q (%s), want %q (FULL_OBJECT)", aws.ToString(h.ChecksumSHA256), h.ChecksumType, want)
	}
	if h := head("a.txt", false); h.ChecksumSHA256 != nil {
		t.Errorf("HEAD not asking for the checksum got %q", aws.ToString(h.ChecksumSHA256))
	}
	got, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("sums"), Key: aws.String("a.txt"), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(got.Body) // the SDK checks the body against the checksum as it reads
	got.Body.Close()
	if err != nil || !bytes.Equal(body, data) || aws.ToString(got.ChecksumSHA256) != want {
		t.Errorf("GET asking for the checksum: %d bytes, checksum %q, err %v", len(body), aws.ToString(got.ChecksumSHA256), err)
	}
	ranged, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("sums"), Key: aws.String("a.txt"),
		Range: aws.String("bytes=0-9"), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	ranged.Body.Close()
	if ranged.ChecksumSHA256 != nil {
		t.Errorf("a ranged GET got the whole object's checksum %q", aws.ToString(ranged.ChecksumSHA256))
	}
	if _, err := c.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: aws.String("sums"), Key: aws.String("copy.txt"), CopySource: aws.String("sums/a.txt"),
		MetadataDirective: types.MetadataDirectiveReplace, ContentType: aws.String("text/plain")}); err != nil {
		t.Fatal(err)
	}
	if h := head("copy.txt", true); aws.ToString(h.ChecksumSHA256) != want {
		t.Errorf("a copy with new metadata has checksum %q, want the source's %q", aws.ToString(h.ChecksumSHA256), want)
	}
	if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("sums"), Key: aws.String("crc.txt"), Body: bytes.NewReader(data),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32}); err != nil {
		t.Fatal(err)
	}
	crc := make([]byte, 4)
	binary.BigEndian.PutUint32(crc, crc32.ChecksumIEEE(data))
	if h := head("crc.txt", true); aws.ToString(h.ChecksumCRC32) != base64.StdEncoding.EncodeToString(crc) {
		t.Errorf("CRC32 kept as %q, want %q", aws.ToString(h.ChecksumCRC32), base64.StdEncoding.EncodeToString(crc))
	}
}

// TestMultipartChecksums: a completion's declared checksum, composite (of
// the parts' checksums) or of the whole object, is checked against the
// parts, kept, and sent back; a wrong one fails the completion and leaves
// the upload to complete again.
func TestMultipartChecksums(t *testing.T) {
	e := newEnv(t)
	c := e.client(e.admin)
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("sums")}); err != nil {
		t.Fatal(err)
	}
	table := crc32.MakeTable(crc32.Castagnoli)
	enc := func(v uint32) string {
		b := make([]byte, 4)
		binary.BigEndian.PutUint32(b, v)
		return base64.StdEncoding.EncodeToString(b)
	}
	parts := [][]byte{bytes.Repeat([]byte("first part "), (5<<20)/11+1), []byte("the last part")}
	upload := func(key string) (string, []types.CompletedPart) {
		t.Helper()
		mu, err := c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String("sums"), Key: aws.String(key),
			ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c})
		if err != nil {
			t.Fatal(err)
		}
		var done []types.CompletedPart
		for i, p := range parts {
			out, err := c.UploadPart(ctx, &awss3.UploadPartInput{Bucket: aws.String("sums"), Key: aws.String(key), UploadId: mu.UploadId,
				PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c})
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(out.ChecksumCRC32C) != enc(crc32.Checksum(p, table)) {
				t.Errorf("part %d answered CRC32C %q", i+1, aws.ToString(out.ChecksumCRC32C))
			}
			done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag, ChecksumCRC32C: out.ChecksumCRC32C})
		}
		return aws.ToString(mu.UploadId), done
	}
	complete := func(key, id string, done []types.CompletedPart, sum string, typ types.ChecksumType) error {
		out, err := c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: aws.String("sums"), Key: aws.String(key),
			UploadId: aws.String(id), MultipartUpload: &types.CompletedMultipartUpload{Parts: done},
			ChecksumCRC32C: aws.String(sum), ChecksumType: typ})
		if err == nil && (aws.ToString(out.ChecksumCRC32C) != sum || out.ChecksumType != typ) {
			t.Errorf("the completion's result says %q (%s), want %q (%s)", aws.ToString(out.ChecksumCRC32C), out.ChecksumType, sum, typ)
		}
		return err
	}
	headSum := func(key string) (string, types.ChecksumType) {
		t.Helper()
		h, err := c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("sums"), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(h.ChecksumCRC32C), h.ChecksumType
	}

	var sums []byte
	for _, p := range parts {
		sums = binary.BigEndian.AppendUint32(sums, crc32.Checksum(p, table))
	}
	composite := enc(crc32.Checksum(sums, table)) + "-2"
	id, done := upload("composite.bin")
	if err := complete("composite.bin", id, done, composite, types.ChecksumTypeComposite); err != nil {
		t.Fatal(err)
	}
	if got, typ := headSum("composite.bin"); got != composite || typ != types.ChecksumTypeComposite {
		t.Errorf("composite checksum kept as %q (%s), want %q (COMPOSITE)", got, typ, composite)
	}

	whole := enc(crc32.Checksum(bytes.Join(parts, nil), table))
	id, done = upload("whole.bin")
	err := complete("whole.bin", id, done, enc(crc32.Checksum([]byte("something else"), table)), types.ChecksumTypeFullObject)
	wantCode(t, "a completion with the wrong checksum", err, "BadDigest")
	if err := complete("whole.bin", id, done, whole, types.ChecksumTypeFullObject); err != nil {
		t.Fatalf("the upload after a refused completion: %v", err)
	}
	if got, typ := headSum("whole.bin"); got != whole || typ != types.ChecksumTypeFullObject {
		t.Errorf("whole-object checksum kept as %q (%s), want %q (FULL_OBJECT)", got, typ, whole)
	}
	body, _ := get(t, c, "sums", "whole.bin")
	if !bytes.Equal(body, bytes.Join(parts, nil)) {
		t.Error("the object is not its parts")
	}
}

// TestContinueForEmptyBody: a request with an empty body that expects
// "100 Continue" gets it, as botocore needs (see ServeHTTP).
func TestContinueForEmptyBody(t *testing.T) {
	e := newEnv(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	if _, err := io.WriteString(conn, "PUT /some-bucket/empty HTTP/1.1\r\nHost: loft\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("first line %q (%v), want 100 Continue", line, err)
	}
	for line != "\r\n" { // to the blank line that ends it
		if line, err = r.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden { // anonymous: refused, after the 100
		t.Errorf("final status %d, want 403", resp.StatusCode)
	}
}

// listPages follows a listing page by page: page returns a page's names,
// the marker of the next and whether there is one. A listing that does not
// end within 20 pages fails the test.
func listPages(t *testing.T, what string, page func(marker *string) ([]string, *string, bool)) []string {
	t.Helper()
	var all []string
	var marker *string
	for range 20 {
		names, next, more := page(marker)
		all = append(all, names...)
		if !more {
			return all
		}
		marker = next
	}
	t.Fatalf("%s listing did not end in 20 pages: %v", what, all)
	return nil
}
