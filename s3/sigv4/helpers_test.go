package sigv4

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/loftstore/loft/s3/s3err"
)

const (
	testAccessKey = "AKIDLOFTTEST"
	testSecret    = "loft/Secret+Key=1"
	testRegion    = "us-east-1"
	testHost      = "s3.loft.test"
)

// testTime is when the tests' requests are signed and verified.
var testTime = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

// staticKeys is a Keys of fixed access keys.
type staticKeys map[string]string

func (k staticKeys) Secret(_ context.Context, accessKey string) (string, error) {
	secret, ok := k[accessKey]
	if !ok {
		return "", fmt.Errorf("key %q: %w", accessKey, ErrUnknownKey)
	}
	return secret, nil
}

func testVerifier(now time.Time) *Verifier {
	return &Verifier{
		Keys: staticKeys{testAccessKey: testSecret},
		Now:  func() time.Time { return now },
	}
}

func testSigner() *v4.Signer {
	return v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
}

func testCreds(secret string) aws.Credentials {
	return aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: secret}
}

// clientRequest is a request as a client builds it before signing.
func clientRequest(t *testing.T, method, target string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+testHost+target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		req.Body, req.ContentLength = nil, 0
	}
	return req
}

// signHeader signs req the way the S3 client does: x-amz-content-sha256
// set to payloadHash, then the SDK signer.
func signHeader(t *testing.T, req *http.Request, payloadHash, secret string, at time.Time) {
	t.Helper()
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	if err := testSigner().SignHTTP(context.Background(), testCreds(secret), req, payloadHash, "s3", testRegion, at); err != nil {
		t.Fatal(err)
	}
}

// overWire writes a client request as it goes on the wire and reads it back
// as a server does, so Verify sees RequestURI, Host and headers as sent.
func overWire(t *testing.T, req *http.Request) *http.Request {
	t.Helper()
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return readWire(t, buf.Bytes())
}

func readWire(t *testing.T, raw []byte) *http.Request {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// verifyAll runs Verify and reads the whole body.
func verifyAll(v *Verifier, r *http.Request) (*Request, []byte, error) {
	req, err := v.Verify(context.Background(), r)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(req.Body)
	if cerr := req.Body.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return req, body, err
}

// wantCode checks that err is an *s3err.Error with code; code "" wants no error.
func wantCode(t *testing.T, err error, code s3err.Code) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	e, ok := s3err.As(err)
	if !ok {
		t.Fatalf("error %v, want an s3err.Error %s", err, code)
	}
	if e.Code != code {
		t.Fatalf("code %s (%v), want %s", e.Code, err, code)
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// testHMAC is the tests' own HMAC-SHA256, independent of the package's.
func testHMAC(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	io.WriteString(m, data)
	return m.Sum(nil)
}

// chunkSigner signs aws-chunked bodies for the tests, by the string to sign
// of AWS's documentation, without the package's code.
type chunkSigner struct {
	key     []byte
	amzDate string
	scope   string
	prev    string // hex
}

func newChunkSigner(secret, amzDate, region, seed string) *chunkSigner {
	k := testHMAC([]byte("AWS4"+secret), amzDate[:8])
	k = testHMAC(k, region)
	k = testHMAC(k, "s3")
	k = testHMAC(k, "aws4_request")
	return &chunkSigner{key: k, amzDate: amzDate, scope: amzDate[:8] + "/" + region + "/s3/aws4_request", prev: seed}
}

func (s *chunkSigner) chunk(data []byte) string {
	sts := strings.Join([]string{"AWS4-HMAC-SHA256-PAYLOAD", s.amzDate, s.scope, s.prev, sha256Hex(nil), sha256Hex(data)}, "\n")
	s.prev = hex.EncodeToString(testHMAC(s.key, sts))
	return s.prev
}

func (s *chunkSigner) trailer(lines string) string {
	sts := strings.Join([]string{"AWS4-HMAC-SHA256-TRAILER", s.amzDate, s.scope, s.prev, sha256Hex([]byte(lines))}, "\n")
	s.prev = hex.EncodeToString(testHMAC(s.key, sts))
	return s.prev
}

// encodeChunks frames data as aws-chunked in chunks of size bytes. With a
// signer each chunk is signed; trailer lines ("name:value", no CRLF) follow
// the final chunk, signed when the signer is given.
func encodeChunks(data []byte, size int, signer *chunkSigner, trailers []string) []byte {
	var b bytes.Buffer
	header := func(chunk []byte) {
		fmt.Fprintf(&b, "%x", len(chunk))
		if signer != nil {
			fmt.Fprintf(&b, ";chunk-signature=%s", signer.chunk(chunk))
		}
		b.WriteString("\r\n")
	}
	for len(data) > 0 {
		n := min(size, len(data))
		header(data[:n])
		b.Write(data[:n])
		b.WriteString("\r\n")
		data = data[n:]
	}
	header(nil)
	if trailers == nil {
		b.WriteString("\r\n")
		return b.Bytes()
	}
	var canonical strings.Builder
	for _, line := range trailers {
		b.WriteString(line + "\r\n")
		canonical.WriteString(line + "\n")
	}
	if signer != nil {
		fmt.Fprintf(&b, "x-amz-trailer-signature:%s\r\n", signer.trailer(canonical.String()))
	}
	b.WriteString("\r\n")
	return b.Bytes()
}
