package sigv4

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/loftstore/loft/s3/s3err"
)

// outcome is what the test server made of one request.
type outcome struct {
	payload string // x-amz-content-sha256 as received
	req     *Request
	body    []byte
	err     error
}

// s3Server answers S3 requests after Verify, on 127.0.0.1, and reports
// each outcome.
type s3Server struct {
	*httptest.Server
	verifier *Verifier
	seen     chan outcome
}

func newS3Server(t *testing.T, tls bool, now time.Time) *s3Server {
	s := &s3Server{verifier: testVerifier(now), seen: make(chan outcome, 4)}
	if tls {
		s.Server = httptest.NewTLSServer(s)
	} else {
		s.Server = httptest.NewServer(s)
	}
	t.Cleanup(s.Close)
	return s
}

func (s *s3Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, err := s.verifier.Verify(r.Context(), r)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(req.Body)
	}
	s.seen <- outcome{payload: r.Header.Get("X-Amz-Content-Sha256"), req: req, body: body, err: err}
	if err != nil {
		e, ok := s3err.As(err)
		if !ok {
			e = s3err.Wrap(s3err.InternalError, err, "internal error")
		}
		w.WriteHeader(e.Code.Status())
		var msg bytes.Buffer
		xml.EscapeText(&msg, []byte(e.Message))
		fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message></Error>", e.Code, msg.String())
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Query().Has("list-type"):
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
			`<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bucket</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>`)
	case r.Method == http.MethodGet:
		w.Header().Set("Content-Length", "5")
		fmt.Fprint(w, "hello")
	default:
		w.Header().Set("ETag", `"etag"`)
	}
}

// last is the outcome of the request the client just made.
func (s *s3Server) last(t *testing.T) outcome {
	t.Helper()
	select {
	case o := <-s.seen:
		return o
	default:
		t.Fatal("the server saw no request")
		return outcome{}
	}
}

// tamperTransport changes a request after the client signed it.
type tamperTransport struct {
	base   http.RoundTripper
	tamper func(*http.Request)
}

func (t tamperTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	t.tamper(r)
	return t.base.RoundTrip(r)
}

// s3Client is an S3 client of the server with the settings
// config.LoadDefaultConfig gives this SDK version (checksums when supported).
func (s *s3Server) client(secret string, tamper func(*http.Request), optFns ...func(*s3.Options)) *s3.Client {
	httpClient := s.Client()
	if tamper != nil {
		httpClient = &http.Client{Transport: tamperTransport{base: httpClient.Transport, tamper: tamper}}
	}
	return s3.New(s3.Options{
		Region:                     testRegion,
		BaseEndpoint:               aws.String(s.URL),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(testAccessKey, secret, ""),
		HTTPClient:                 httpClient,
		RetryMaxAttempts:           1,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenSupported,
	}, optFns...)
}

var oddKeys = []string{"plain", "a b", "ü/ß/東京", "a+b=c&d", "~tilde*star", "100%", "a//b", "semi;colon,comma", "'quote'(paren)!"}

// unseekable hides a reader's Seek, as a pipe or a socket would.
type unseekable struct{ io.Reader }

func TestS3Client(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[tls], func(t *testing.T) {
			testS3Client(t, tls)
		})
	}
}

func testS3Client(t *testing.T, tls bool) {
	ctx := context.Background()
	start := time.Now()
	srv := newS3Server(t, tls, start)
	client := srv.client(testSecret, nil)
	bucket := aws.String("bucket")

	// put sends a PutObject and returns what the server made of it.
	put := func(t *testing.T, c *s3.Client, in *s3.PutObjectInput) (outcome, error) {
		t.Helper()
		if in.Bucket == nil {
			in.Bucket = bucket
		}
		if in.Key == nil {
			in.Key = aws.String("key")
		}
		_, err := c.PutObject(ctx, in)
		return srv.last(t), err
	}
	wantPut := func(t *testing.T, o outcome, err error, data []byte, alg string) {
		t.Helper()
		wantCode(t, o.err, "")
		if err != nil {
			t.Fatalf("client: %v", err)
		}
		if !bytes.Equal(o.body, data) {
			t.Fatalf("body of %d bytes, want %d", len(o.body), len(data))
		}
		if alg != "" && o.req.Checksums[alg] == "" {
			t.Fatalf("checksums %v, want %s", o.req.Checksums, alg)
		}
	}

	t.Run("PutObject default", func(t *testing.T) {
		o, err := put(t, client, &s3.PutObjectInput{Body: bytes.NewReader(helloWorld)})
		wantPut(t, o, err, helloWorld, "CRC32")
		// Over http the SDK signs the body's SHA-256 and sends its CRC32 as a
		// header; over https it streams it aws-chunked with a CRC32 trailer.
		want := sha256Hex(helloWorld)
		if tls {
			want = streamingUnsignedTrailer
		}
		if o.payload != want || o.req.Length != int64(len(helloWorld)) {
			t.Fatalf("x-amz-content-sha256 %q length %d", o.payload, o.req.Length)
		}
	})
	for _, key := range oddKeys {
		t.Run("PutObject key "+key, func(t *testing.T) {
			o, err := put(t, client, &s3.PutObjectInput{Key: aws.String(key), Body: bytes.NewReader(helloWorld)})
			wantPut(t, o, err, helloWorld, "CRC32")
		})
	}
	for _, alg := range []types.ChecksumAlgorithm{types.ChecksumAlgorithmCrc32c, types.ChecksumAlgorithmCrc64nvme,
		types.ChecksumAlgorithmSha1, types.ChecksumAlgorithmSha256} {
		t.Run("PutObject "+string(alg), func(t *testing.T) {
			o, err := put(t, client, &s3.PutObjectInput{Body: bytes.NewReader(helloWorld), ChecksumAlgorithm: alg})
			wantPut(t, o, err, helloWorld, string(alg))
		})
	}
	t.Run("PutObject empty", func(t *testing.T) {
		o, err := put(t, client, &s3.PutObjectInput{Body: bytes.NewReader(nil)})
		wantPut(t, o, err, []byte{}, "CRC32")
	})
	big := bytes.Repeat([]byte("0123456789abcdef"), 20000)
	t.Run("PutObject large", func(t *testing.T) {
		o, err := put(t, client, &s3.PutObjectInput{Body: bytes.NewReader(big)})
		wantPut(t, o, err, big, "CRC32")
	})
	if tls {
		t.Run("PutObject unseekable", func(t *testing.T) {
			// Unknown length: 64 KiB aws-chunked chunks inside HTTP chunking,
			// without x-amz-decoded-content-length.
			o, err := put(t, client, &s3.PutObjectInput{Body: unseekable{bytes.NewReader(big)}})
			wantPut(t, o, err, big, "CRC32")
			if o.req.Length != -1 {
				t.Fatalf("length %d", o.req.Length)
			}
		})
	}
	t.Run("PutObject Content-MD5", func(t *testing.T) {
		sum := md5.Sum(helloWorld)
		o, err := put(t, client, &s3.PutObjectInput{Body: bytes.NewReader(helloWorld),
			ContentMD5: aws.String(base64.StdEncoding.EncodeToString(sum[:]))})
		wantPut(t, o, err, helloWorld, "")
		if o.req.MD5 != base64.StdEncoding.EncodeToString(sum[:]) {
			t.Fatalf("MD5 %q", o.req.MD5)
		}
		o, _ = put(t, client, &s3.PutObjectInput{Body: bytes.NewReader(helloWorld),
			ContentMD5: aws.String(base64.StdEncoding.EncodeToString(make([]byte, 16)))})
		wantCode(t, o.err, s3err.BadDigest)
	})
	t.Run("PutObject unsigned payload", func(t *testing.T) {
		// Without checksums, for the checksum step would sign the SHA-256 over http.
		c := srv.client(testSecret, nil, s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware),
			func(o *s3.Options) { o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired })
		o, err := put(t, c, &s3.PutObjectInput{Body: bytes.NewReader(helloWorld)})
		wantPut(t, o, err, helloWorld, "")
		if o.payload != unsignedPayload || len(o.req.Checksums) != 0 {
			t.Fatalf("x-amz-content-sha256 %q, checksums %v", o.payload, o.req.Checksums)
		}
	})
	for _, key := range oddKeys {
		t.Run("GetObject key "+key, func(t *testing.T) {
			out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: bucket, Key: aws.String(key)})
			o := srv.last(t)
			wantCode(t, o.err, "")
			if err != nil {
				t.Fatal(err)
			}
			out.Body.Close()
		})
	}
	for _, prefix := range oddKeys {
		t.Run("ListObjectsV2 prefix "+prefix, func(t *testing.T) {
			_, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: bucket, Prefix: aws.String(prefix),
				Delimiter: aws.String("/"), StartAfter: aws.String(prefix + "=")})
			o := srv.last(t)
			wantCode(t, o.err, "")
			if err != nil {
				t.Fatal(err)
			}
		})
	}

	presigner := s3.NewPresignClient(client)
	send := func(t *testing.T, method, url string, header http.Header, body []byte) outcome {
		t.Helper()
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, vs := range header {
			if k != "Host" {
				req.Header[k] = vs
			}
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return srv.last(t)
	}
	for _, key := range oddKeys {
		t.Run("presigned GET "+key, func(t *testing.T) {
			p, err := presigner.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: bucket, Key: aws.String(key)})
			if err != nil {
				t.Fatal(err)
			}
			wantCode(t, send(t, p.Method, p.URL, p.SignedHeader, nil).err, "")
		})
	}
	t.Run("presigned PUT", func(t *testing.T) {
		p, err := presigner.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: bucket, Key: aws.String("a b"),
			ContentType: aws.String("text/plain")})
		if err != nil {
			t.Fatal(err)
		}
		o := send(t, p.Method, p.URL, p.SignedHeader, helloWorld)
		wantCode(t, o.err, "")
		if !bytes.Equal(o.body, helloWorld) {
			t.Fatalf("body %q", o.body)
		}
		header := p.SignedHeader.Clone()
		header.Set("Content-Type", "text/html")
		wantCode(t, send(t, p.Method, p.URL, header, helloWorld).err, s3err.SignatureDoesNotMatch)
		header = p.SignedHeader.Clone()
		header.Set("X-Amz-Acl", "public-read")
		wantCode(t, send(t, p.Method, p.URL, header, helloWorld).err, s3err.AccessDenied)
		wantCode(t, send(t, p.Method, strings.Replace(p.URL, "/a%20b?", "/a%20c?", 1), p.SignedHeader, helloWorld).err,
			s3err.SignatureDoesNotMatch)
	})
	t.Run("presigned GET expired", func(t *testing.T) {
		p, err := presigner.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: bucket, Key: aws.String("key")},
			s3.WithPresignExpires(10*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		// A server whose clock is 11 minutes on, reached under the signed host.
		later := newS3Server(t, tls, start.Add(11*time.Minute))
		req, err := http.NewRequest(http.MethodGet, strings.Replace(p.URL, srv.URL, later.URL, 1), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = strings.TrimPrefix(strings.TrimPrefix(srv.URL, "http://"), "https://")
		resp, err := later.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		o := later.last(t)
		wantCode(t, o.err, s3err.AccessDenied)
		if !strings.Contains(o.err.Error(), "Request has expired") {
			t.Fatalf("error %v", o.err)
		}
	})

	t.Run("wrong secret", func(t *testing.T) {
		o, err := put(t, srv.client("not the secret", nil), &s3.PutObjectInput{Body: bytes.NewReader(helloWorld)})
		wantCode(t, o.err, s3err.SignatureDoesNotMatch)
		var apiErr interface{ ErrorCode() string }
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != string(s3err.SignatureDoesNotMatch) {
			t.Fatalf("client error %v", err)
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		c := srv.client(testSecret, nil, func(o *s3.Options) {
			o.Credentials = credentials.NewStaticCredentialsProvider("NOSUCHKEY", testSecret, "")
		})
		_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: bucket, Key: aws.String("key")})
		var apiErr interface{ ErrorCode() string }
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != string(s3err.InvalidAccessKeyID) {
			t.Fatalf("client error %v", err)
		}
		wantCode(t, srv.last(t).err, s3err.InvalidAccessKeyID)
	})

	// Changes made after the client signed.
	bodyCode := s3err.XAmzContentSHA256Mismatch
	if tls {
		bodyCode = s3err.BadDigest // an unsigned payload with a CRC32 trailer
	}
	tampers := []struct {
		name   string
		tamper func(*http.Request)
		code   s3err.Code
	}{
		{"header", func(r *http.Request) { r.Header.Set("Content-Type", "text/html") }, s3err.SignatureDoesNotMatch},
		{"path", func(r *http.Request) { r.URL.Path, r.URL.RawPath = "/bucket/other", "" }, s3err.SignatureDoesNotMatch},
		{"query", func(r *http.Request) { r.URL.RawQuery += "&acl=" }, s3err.SignatureDoesNotMatch},
		{"unsigned x-amz header", func(r *http.Request) { r.Header.Set("X-Amz-Meta-Extra", "1") }, s3err.AccessDenied},
		{"body", func(r *http.Request) {
			data, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(bytes.Replace(data, []byte("hello"), []byte("HELLO"), 1)))
		}, bodyCode},
	}
	for _, tc := range tampers {
		t.Run("tampered "+tc.name, func(t *testing.T) {
			o, _ := put(t, srv.client(testSecret, tc.tamper), &s3.PutObjectInput{Body: bytes.NewReader(helloWorld)})
			wantCode(t, o.err, tc.code)
		})
	}
}
