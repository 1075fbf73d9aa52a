package testscripts

// The S3 gateway against real clients: awscli, s3cmd, rclone, restic's s3
// backend and a boto3 script, each run as a process against a real
// `loft serve --s3` on 127.0.0.1. `make test` installs the clients from
// Debian's packages and sets LOFT_S3_CLIENTS=require, so that a missing
// client fails the test there; elsewhere a missing one is skipped.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// s3server is a `loft serve --s3` with an admin key.
type s3server struct {
	*server
	endpoint    string
	key, secret string
}

func serveS3(t *testing.T) *s3server {
	t.Helper()
	repo := newRepo(t, filepath.Join(t.TempDir(), "repo"))
	var k struct{ ID, Secret string }
	if err := json.Unmarshal([]byte(must(t, repo, "key", "create", "--name", "test", "--bucket", "*:admin", "--json")), &k); err != nil {
		t.Fatal(err)
	}
	return serveS3On(t, repo, k.ID, k.Secret)
}

// serveS3On starts `loft serve --s3` on an existing repository.
func serveS3On(t *testing.T, repo, key, secret string) *s3server {
	t.Helper()
	srv, lines := startServe(t, repo, "--listen", "127.0.0.1:0", "--s3", "127.0.0.1:0")
	s := &s3server{server: srv, key: key, secret: secret}
	timeout := time.After(60 * time.Second)
	// "serving ID on ADDR" and "serving S3 on ADDR", in either order.
	for s.endpoint == "" || s.addr == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("serve did not print its S3 address; its log is %s.log", repo)
			}
			if a, found := strings.CutPrefix(l, "serving S3 on "); found {
				s.endpoint = "http://" + a
			} else if f := strings.Fields(l); len(f) == 4 && f[0] == "serving" {
				s.id, s.addr = f[1], f[3] // "serving ID on ADDR"
			}
		case <-timeout:
			t.Fatal("serve --s3 did not start")
		}
	}
	return s
}

// client finds a client program as Debian installs it (not another copy
// earlier on PATH, such as a pyenv's awscli), or skips (fails under make
// test).
func client(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join("/usr/bin", name)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("LOFT_S3_CLIENTS") == "require" {
			t.Fatalf("%s is not installed (make s3-clients installs it)", name)
		}
		t.Skipf("%s is not installed (make s3-clients installs it)", name)
	}
	return p
}

// clientEnv is the environment of a client process: the key, no CA bundle
// of the machine's (some tools refuse plain HTTP with one set) and a home
// of its own, so no user configuration leaks in.
func (s *s3server) clientEnv(t *testing.T) []string {
	home := t.TempDir()
	var env []string
	for _, e := range os.Environ() {
		k, _, _ := strings.Cut(e, "=")
		if strings.HasPrefix(k, "AWS_") || k == "HOME" || strings.HasPrefix(k, "RCLONE_") || strings.HasPrefix(k, "RESTIC_") {
			continue
		}
		env = append(env, e)
	}
	return append(env, "HOME="+home, "AWS_ACCESS_KEY_ID="+s.key, "AWS_SECRET_ACCESS_KEY="+s.secret,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=")
}

// sh runs a client command in dir and fails the test, with its output,
// if it fails; it returns standard output.
func (s *s3server) sh(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s\n(serve's log: %s.log)", filepath.Base(name), strings.Join(args, " "), err, out.String(), errb.String(), s.repo)
	}
	return out.String()
}

// sameFiles fails unless the regular files below a and b are the same.
func sameFiles(t *testing.T, a, b string) {
	t.Helper()
	sameTree(t, a, b)
	sameTree(t, b, a)
}

// s3tree writes a small tree: a few files, one over 16 MiB (multipart for
// every client), names with spaces and unicode.
func s3tree(t *testing.T, dir string) {
	randFile(t, filepath.Join(dir, "big.bin"), 21<<20, 1)
	randFile(t, filepath.Join(dir, "sub dir", "ünï code.txt"), 3000, 2)
	randFile(t, filepath.Join(dir, "sub dir", "deeper", "x+y=z.dat"), 700_000, 3)
	randFile(t, filepath.Join(dir, "small"), 10, 4)
}

func TestS3AWSCLI(t *testing.T) {
	aws := client(t, "aws")
	s := serveS3(t)
	dir := t.TempDir()
	// awscli 2.9 presigns with Signature Version 2 unless told otherwise;
	// loft takes version 4 only.
	conf := filepath.Join(dir, "aws.conf")
	os.WriteFile(conf, []byte("[default]\ns3 =\n  signature_version = s3v4\n"), 0o600)
	env := append(s.clientEnv(t), "AWS_CONFIG_FILE="+conf)
	ep := "--endpoint-url=" + s.endpoint
	s3tree(t, filepath.Join(dir, "src"))
	s.sh(t, dir, env, aws, ep, "s3", "mb", "s3://awscli")
	s.sh(t, dir, env, aws, ep, "s3", "cp", "--only-show-errors", "src/big.bin", "s3://awscli/one/big.bin")
	s.sh(t, dir, env, aws, ep, "s3", "sync", "--only-show-errors", "src", "s3://awscli/tree")
	ls := s.sh(t, dir, env, aws, ep, "s3", "ls", "--recursive", "s3://awscli/tree/")
	for _, want := range []string{"tree/big.bin", "tree/sub dir/ünï code.txt", "tree/sub dir/deeper/x+y=z.dat", "tree/small"} {
		if !strings.Contains(ls, want) {
			t.Fatalf("aws s3 ls lacks %q:\n%s", want, ls)
		}
	}
	s.sh(t, dir, env, aws, ep, "s3", "sync", "--only-show-errors", "s3://awscli/tree", "back")
	sameFiles(t, filepath.Join(dir, "src"), filepath.Join(dir, "back"))
	// The same objects through the CLI of loft.
	must(t, s.repo, "get", "awscli/tree", filepath.Join(dir, "viacli"))
	sameFiles(t, filepath.Join(dir, "src"), filepath.Join(dir, "viacli"))

	head := s.sh(t, dir, env, aws, ep, "s3api", "head-object", "--bucket", "awscli", "--key", "one/big.bin")
	if !strings.Contains(head, `-3\"`) && !strings.Contains(head, "PartsCount") {
		t.Fatalf("a 21 MiB aws s3 cp is not a multipart object:\n%s", head)
	}
	s.sh(t, dir, env, aws, ep, "s3", "cp", "--only-show-errors", "src/small", "s3://awscli/one/big.bin")
	vs := s.sh(t, dir, env, aws, ep, "s3api", "list-object-versions", "--bucket", "awscli", "--prefix", "one/")
	if strings.Count(vs, `"VersionId"`) != 2 {
		t.Fatalf("list-object-versions after two puts:\n%s", vs)
	}
	url := strings.TrimSpace(s.sh(t, dir, env, aws, ep, "s3", "presign", "s3://awscli/tree/small", "--expires-in", "300"))
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want, _ := os.ReadFile(filepath.Join(dir, "src", "small"))
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
		t.Fatalf("presigned GET of %s: %d, %d bytes: %.300s", url, resp.StatusCode, len(body), body)
	}
	s.sh(t, dir, env, aws, ep, "s3", "rm", "--only-show-errors", "--recursive", "s3://awscli/")
	s.sh(t, dir, env, aws, ep, "s3", "rb", "s3://awscli")
	must(t, s.repo, "check")
}

func TestS3Cmd(t *testing.T) {
	s3cmd := client(t, "s3cmd")
	s := serveS3(t)
	dir := t.TempDir()
	host := strings.TrimPrefix(s.endpoint, "http://")
	conf := filepath.Join(dir, "s3cfg")
	os.WriteFile(conf, []byte(fmt.Sprintf("[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\nhost_bucket = %s\nuse_https = False\nsignature_v2 = False\n",
		s.key, s.secret, host, host)), 0o600)
	env := s.clientEnv(t)
	s3tree(t, filepath.Join(dir, "src"))
	c := func(args ...string) string {
		return s.sh(t, dir, env, s3cmd, append([]string{"-c", conf, "--no-progress"}, args...)...)
	}
	c("mb", "s3://s3cmd")
	c("put", "--recursive", "src/", "s3://s3cmd/tree/")
	ls := c("ls", "--recursive", "s3://s3cmd/")
	if !strings.Contains(ls, "s3://s3cmd/tree/sub dir/deeper/x+y=z.dat") {
		t.Fatalf("s3cmd ls:\n%s", ls)
	}
	os.Mkdir(filepath.Join(dir, "back"), 0o755)
	c("get", "--recursive", "s3://s3cmd/tree/", "back/")
	sameFiles(t, filepath.Join(dir, "src"), filepath.Join(dir, "back"))
	c("del", "--recursive", "--force", "s3://s3cmd/")
	c("rb", "s3://s3cmd")
	must(t, s.repo, "check")
	// loft status (asking the serving process) shows the gateway and its traffic.
	var st struct {
		Services []struct {
			Name     string `json:"name"`
			Addr     string `json:"addr"`
			Requests int64  `json:"requests"`
			BytesIn  int64  `json:"bytes_in"`
		} `json:"services"`
	}
	if err := json.Unmarshal([]byte(must(t, s.repo, "status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Services) != 1 || st.Services[0].Name != "s3" || "http://"+st.Services[0].Addr != s.endpoint ||
		st.Services[0].Requests < 10 || st.Services[0].BytesIn < 21<<20 {
		t.Fatalf("status shows services %+v", st.Services)
	}
	if out := must(t, s.repo, "status"); !strings.Contains(out, "s3 on "+strings.TrimPrefix(s.endpoint, "http://")) {
		t.Fatalf("status does not show the gateway:\n%s", out)
	}
}

func TestS3Rclone(t *testing.T) {
	rclone := client(t, "rclone")
	s := serveS3(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "rclone.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("[loft]\ntype = s3\nprovider = Other\naccess_key_id = %s\nsecret_access_key = %s\nendpoint = %s\nregion = us-east-1\n",
		s.key, s.secret, s.endpoint)), 0o600)
	env := s.clientEnv(t)
	s3tree(t, filepath.Join(dir, "src"))
	// A 5 MiB cutoff makes the large file a multipart upload.
	rc := func(args ...string) string {
		return s.sh(t, dir, env, rclone, append([]string{"--config", conf, "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M"}, args...)...)
	}
	rc("mkdir", "loft:rclone")
	rc("sync", "src", "loft:rclone/tree")
	rc("check", "src", "loft:rclone/tree")
	os.Remove(filepath.Join(dir, "src", "small"))
	randFile(t, filepath.Join(dir, "src", "new"), 1234, 5)
	rc("sync", "src", "loft:rclone/tree")
	rc("check", "src", "loft:rclone/tree")
	rc("copy", "loft:rclone/tree", "back")
	sameFiles(t, filepath.Join(dir, "src"), filepath.Join(dir, "back"))
	must(t, s.repo, "check")
}

func TestS3Restic(t *testing.T) {
	restic := client(t, "restic")
	s := serveS3(t)
	dir := t.TempDir()
	env := append(s.clientEnv(t), "RESTIC_PASSWORD=loft-test", "RESTIC_REPOSITORY=s3:"+s.endpoint+"/restic/repo",
		"RESTIC_CACHE_DIR="+filepath.Join(dir, "cache"))
	s3tree(t, filepath.Join(dir, "src"))
	s.sh(t, dir, env, restic, "init")
	s.sh(t, dir, env, restic, "backup", "--quiet", "src")
	s.sh(t, dir, env, restic, "check", "--read-data")
	s.sh(t, dir, env, restic, "restore", "latest", "--target", "back")
	sameFiles(t, filepath.Join(dir, "src"), filepath.Join(dir, "back", "src"))
	must(t, s.repo, "check")
}

func TestS3Boto3(t *testing.T) {
	python := "/usr/bin/python3" // Debian's, which has python3-boto3
	if _, err := os.Stat(python); err != nil || exec.Command(python, "-c", "import boto3").Run() != nil {
		client(t, "python3-boto3 (import boto3 in /usr/bin/python3)")
	}
	s := serveS3(t)
	var ro struct{ ID, Secret string }
	if err := json.Unmarshal([]byte(must(t, s.repo, "key", "create", "--name", "ro", "--bucket", "boto-public:read", "--json")), &ro); err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs(filepath.Join("testdata", "s3", "boto3_ops.py"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env := append(s.clientEnv(t), "PYTHONDONTWRITEBYTECODE=1", "LOFT_S3_ENDPOINT="+s.endpoint, "LOFT_S3_READONLY_KEY="+ro.ID, "LOFT_S3_READONLY_SECRET="+ro.Secret)
	// The script expects a public-read bucket with one object.
	must(t, s.repo, "bucket", "policy", "boto-public", "public-read")
	pub := filepath.Join(dir, "hello")
	os.WriteFile(pub, []byte("hello"), 0o644)
	must(t, s.repo, "put", pub, "--as", "boto-public/hello")
	out := s.sh(t, dir, env, python, script)
	t.Log(out)
	must(t, s.repo, "check")
}

// signalReader reads r and closes reached once n bytes went through.
type signalReader struct {
	r       io.Reader
	n       int64
	reached chan struct{}
	once    sync.Once
}

func (s *signalReader) Read(p []byte) (int, error) {
	k, err := s.r.Read(p)
	s.n -= int64(k)
	if s.n <= 0 {
		s.once.Do(func() { close(s.reached) })
	}
	return k, err
}

// TestS3KillDuringMultipart kills `loft serve --s3` with SIGKILL while a
// part is arriving: afterwards check passes, the upload resumes with the
// parts that were complete, and its completion reads back exactly.
func TestS3KillDuringMultipart(t *testing.T) {
	ctx := context.Background()
	s := serveS3(t)
	c := sdkClient(s)
	if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("kill")}); err != nil {
		t.Fatal(err)
	}
	up, err := c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String("kill"), Key: aws.String("obj")})
	if err != nil {
		t.Fatal(err)
	}
	parts := make([][]byte, 3)
	for i := range parts {
		parts[i] = make([]byte, 6<<20)
		mrand.NewChaCha8([32]byte{byte(i), 7}).Read(parts[i])
	}
	tags := make([]string, len(parts))
	put := func(c *awss3.Client, i int, body io.Reader) error {
		out, err := c.UploadPart(ctx, &awss3.UploadPartInput{Bucket: aws.String("kill"), Key: aws.String("obj"), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: body, ContentLength: aws.Int64(int64(len(parts[i])))})
		if err == nil {
			tags[i] = aws.ToString(out.ETag)
		}
		return err
	}
	if err := put(c, 0, bytes.NewReader(parts[0])); err != nil {
		t.Fatal(err)
	}
	// Part 2 streams (UNSIGNED-PAYLOAD: the client hashes nothing first),
	// and the server dies when half of it was sent.
	sr := &signalReader{r: bytes.NewReader(parts[1]), n: 3 << 20, reached: make(chan struct{})}
	req, err := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/kill/obj?partNumber=2&uploadId=%s", s.endpoint, aws.ToString(up.UploadId)), sr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(parts[1]))
	req.Header.Set("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
	if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: s.key, SecretAccessKey: s.secret}, req,
		"UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	failed := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				err = nil
			} else {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		failed <- err
	}()
	select {
	case <-sr.reached:
	case <-time.After(2 * time.Minute):
		t.Fatal("the part never got half way")
	}
	s.kill()
	if err := <-failed; err == nil {
		t.Fatal("a part whose server was killed half way succeeded")
	}
	must(t, s.repo, "check")

	s2 := serveS3On(t, s.repo, s.key, s.secret)
	c = sdkClient(s2)
	lp, err := c.ListParts(ctx, &awss3.ListPartsInput{Bucket: aws.String("kill"), Key: aws.String("obj"), UploadId: up.UploadId})
	if err != nil || len(lp.Parts) != 1 || aws.ToInt32(lp.Parts[0].PartNumber) != 1 {
		t.Fatalf("parts after the kill: %+v, %v", lp, err)
	}
	for i := 1; i < len(parts); i++ {
		if err := put(c, i, bytes.NewReader(parts[i])); err != nil {
			t.Fatal(err)
		}
	}
	var done []types.CompletedPart
	for i := range parts {
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: aws.String(tags[i])})
	}
	if _, err := c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: aws.String("kill"), Key: aws.String("obj"),
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatal(err)
	}
	out, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("kill"), Key: aws.String("obj")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(got, bytes.Join(parts, nil)) {
		t.Fatalf("the completed object has %d bytes and differs", len(got))
	}
	s2.stop()
	must(t, s.repo, "check", "--read-data")
}

func sdkClient(s *s3server) *awss3.Client {
	return awss3.New(awss3.Options{BaseEndpoint: aws.String(s.endpoint), UsePathStyle: true, Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(s.key, s.secret, ""), Retryer: aws.NopRetryer{}})
}

// TestS3AcrossNodes: an object put through one node's gateway, with its
// metadata, is served by a paired node's gateway once the change logs
// were exchanged, the chunks fetched or replicated from the first.
func TestS3AcrossNodes(t *testing.T) {
	ctx := context.Background()
	a, b := serveS3(t), serveS3(t)
	pair(t, a.server, b.server)
	ca, cb := sdkClient(a), sdkClient(b)
	if _, err := ca.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("shared")}); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 3<<20)
	mrand.NewChaCha8([32]byte{42}).Read(data)
	put, err := ca.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("shared"), Key: aws.String("doc.bin"),
		Body: bytes.NewReader(data), ContentType: aws.String("application/x-test"), Metadata: map[string]string{"origin": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "the object on the other node", func() (bool, string) {
		_, err := cb.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("shared"), Key: aws.String("doc.bin")})
		return err == nil, fmt.Sprint(err)
	})
	out, err := cb.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("shared"), Key: aws.String("doc.bin")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the other node served %d bytes (%v), not the %d put", len(got), err, len(data))
	}
	if aws.ToString(out.ETag) != aws.ToString(put.ETag) || out.Metadata["origin"] != "a" || aws.ToString(out.ContentType) != "application/x-test" {
		t.Fatalf("the other node's headers: ETag %s (want %s), meta %v, type %s", aws.ToString(out.ETag), aws.ToString(put.ETag),
			out.Metadata, aws.ToString(out.ContentType))
	}
}

// TestS3MinioGo runs minio-go's functional test program (built by `make
// minio-ft`, named by LOFT_MINIO_FT) against the gateway and compares
// every result line with testdata/minio-go/expected.txt: a case that
// passed must pass, and one that fails or is skipped (each with its reason
// there) must do so as many times as listed, so that a fix shows too.
func TestS3MinioGo(t *testing.T) {
	ft := os.Getenv("LOFT_MINIO_FT")
	if _, err := os.Stat(ft); ft == "" || err != nil {
		if os.Getenv("LOFT_S3_CLIENTS") == "require" {
			t.Fatalf("minio-go's functional test program %q is missing (make minio-ft builds it)", ft)
		}
		t.Skip("LOFT_MINIO_FT names no program (make minio-ft builds it)")
	}
	want, err := readExpected(filepath.Join("testdata", "minio-go", "expected.txt"))
	if err != nil {
		t.Fatal(err)
	}
	s := serveS3(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ft)
	cmd.Dir = dir
	// SERVER_ENDPOINT must be set: without it the program goes to MinIO's
	// public playground.
	cmd.Env = append(s.clientEnv(t), "SERVER_ENDPOINT="+strings.TrimPrefix(s.endpoint, "http://"), "ACCESS_KEY="+s.key, "SECRET_KEY="+s.secret,
		"ENABLE_HTTPS=0", "MINT_MODE=full", "RUN_ON_FAIL=1", "ENABLE_KMS=0")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	runErr := cmd.Run() // it exits non-zero when a case failed; the lines say which
	if ctx.Err() != nil {
		t.Fatalf("minio-go's tests did not end in 10 minutes: %v\n%s", runErr, errb.String())
	}
	got := map[[2]string]int{}
	detail := map[[2]string]string{}
	for line := range strings.Lines(out.String() + "\n" + errb.String()) {
		i := strings.IndexByte(line, '{')
		if i < 0 {
			continue
		}
		var r struct{ Name, Status, Error, Alert string }
		if json.Unmarshal([]byte(line[i:]), &r) != nil || r.Status == "" {
			continue
		}
		k := [2]string{strings.TrimPrefix(r.Name, "minio-go: "), r.Status}
		got[k]++
		detail[k] = r.Error + r.Alert
	}
	if len(got) == 0 {
		t.Fatalf("minio-go's tests printed no result (%v):\n%.2000s\n%.2000s", runErr, out.String(), errb.String())
	}
	for k, n := range got {
		if want[k] != n {
			t.Errorf("%s %s: %d lines, expected %d (%.200s)", k[0], k[1], n, want[k], detail[k])
		}
	}
	for k, n := range want {
		if got[k] == 0 {
			t.Errorf("%s %s: no line, expected %d", k[0], k[1], n)
		}
	}
	if t.Failed() {
		t.Logf("minio-go exited with %v; update testdata/minio-go/expected.txt when loft changed on purpose", runErr)
	}
	must(t, s.repo, "check")
}

// readExpected reads lines "NAME STATUS COUNT  # why".
func readExpected(path string) (map[[2]string]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	want := map[[2]string]int{}
	for i, line := range strings.Split(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		var n int
		if len(f) != 3 || func() error { _, err := fmt.Sscanf(f[2], "%d", &n); return err }() != nil {
			return nil, fmt.Errorf("%s:%d: want NAME STATUS COUNT", path, i+1)
		}
		want[[2]string{f[0], f[1]}] = n
	}
	return want, nil
}
