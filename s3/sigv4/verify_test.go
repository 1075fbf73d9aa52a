package sigv4

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/loftstore/loft/s3/s3err"
)

var helloWorld = []byte("hello world")

// signedCase is a request signed by the SDK signer in header mode, changed
// on its way to Verify.
type signedCase struct {
	name    string
	method  string            // default PUT
	target  string            // default /bucket/key
	body    []byte            // default helloWorld; nil with GET
	payload string            // x-amz-content-sha256; default the body's SHA-256
	headers map[string]string // set before signing
	secret  string            // default testSecret
	at      time.Time         // signing time; default testTime
	client  func(*http.Request)
	server  func(*http.Request)
	code    s3err.Code
	message string // a part of the error message
	check   func(*testing.T, *Request)
}

func (c signedCase) run(t *testing.T) {
	method, target, body, secret, at := c.method, c.target, c.body, c.secret, c.at
	if method == "" {
		method = http.MethodPut
	}
	if target == "" {
		target = "/bucket/key"
	}
	if body == nil && method == http.MethodPut {
		body = helloWorld
	}
	if secret == "" {
		secret = testSecret
	}
	if at.IsZero() {
		at = testTime
	}
	payload := c.payload
	if payload == "" {
		payload = sha256Hex(body)
	}
	req := clientRequest(t, method, target, body)
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	signHeader(t, req, payload, secret, at)
	if c.client != nil {
		c.client(req)
	}
	r := overWire(t, req)
	if c.server != nil {
		c.server(r)
	}
	got, data, err := verifyAll(testVerifier(testTime), r)
	wantCode(t, err, c.code)
	if c.message != "" && !strings.Contains(err.Error(), c.message) {
		t.Fatalf("error %q does not mention %q", err, c.message)
	}
	if err != nil {
		return
	}
	if !bytes.Equal(data, body) {
		t.Fatalf("body %q, want %q", data, body)
	}
	if got.AccessKey != testAccessKey || got.Region != testRegion {
		t.Fatalf("request %+v", got)
	}
	if c.check != nil {
		c.check(t, got)
	}
}

// setTarget points a server request at another request target.
func setTarget(r *http.Request, target string) {
	r.RequestURI = target
	u, err := url.ParseRequestURI(target)
	if err != nil {
		panic(err)
	}
	r.URL = u
}

// editAuthorization rewrites the Authorization header of a server request.
func editAuthorization(old, new string) func(*http.Request) {
	return func(r *http.Request) {
		r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), old, new, 1))
	}
}

func TestHeaderSigned(t *testing.T) {
	cases := []signedCase{
		{name: "digest payload"},
		{name: "unsigned payload", payload: unsignedPayload},
		{name: "GET without body", method: http.MethodGet, payload: sha256Hex(nil)},
		{name: "odd key", target: "/bucket/a%20b/%C3%BC%2B%3D%26~%2A%25//x"},
		{name: "odd query", method: http.MethodGet, target: "/bucket?list-type=2&prefix=a%20b%2B%C3%BC%3D%26~%2A%25&delimiter=%2F"},
		{name: "valueless query", method: http.MethodPost, target: "/bucket/key?uploads"},
		{name: "signed content headers", headers: map[string]string{
			"Content-Type": "text/plain", "X-Amz-Meta-Colour": "  blue   green ", "Cache-Control": "no-cache"}},
		{name: "signed with skew inside limit", at: testTime.Add(-14 * time.Minute)},
		{name: "wrong secret", secret: "not the secret", code: s3err.SignatureDoesNotMatch},
		{name: "unknown key", server: editAuthorization("Credential="+testAccessKey, "Credential=NOSUCHKEY"),
			code: s3err.InvalidAccessKeyID},
		{name: "tampered path", server: func(r *http.Request) { setTarget(r, "/bucket/other") },
			code: s3err.SignatureDoesNotMatch},
		{name: "tampered escaping of path", target: "/bucket/a%2Bb",
			server: func(r *http.Request) { setTarget(r, "/bucket/a+b") }, code: s3err.SignatureDoesNotMatch},
		{name: "tampered query", method: http.MethodGet, target: "/bucket?prefix=a",
			server: func(r *http.Request) { setTarget(r, "/bucket?prefix=b") }, code: s3err.SignatureDoesNotMatch},
		{name: "added query", server: func(r *http.Request) { setTarget(r, "/bucket/key?acl") },
			code: s3err.SignatureDoesNotMatch},
		{name: "tampered header", headers: map[string]string{"Content-Type": "text/plain"},
			server: func(r *http.Request) { r.Header.Set("Content-Type", "text/html") }, code: s3err.SignatureDoesNotMatch},
		{name: "tampered host", server: func(r *http.Request) { r.Host = "evil.test" }, code: s3err.SignatureDoesNotMatch},
		{name: "tampered method", server: func(r *http.Request) { r.Method = http.MethodPost }, code: s3err.SignatureDoesNotMatch},
		{name: "tampered body", client: func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader("HELLO world")) },
			code: s3err.XAmzContentSHA256Mismatch},
		{name: "skewed past", at: testTime.Add(-16 * time.Minute), code: s3err.RequestTimeTooSkewed},
		{name: "skewed future", at: testTime.Add(16 * time.Minute), code: s3err.RequestTimeTooSkewed},
		{name: "missing x-amz-content-sha256", server: func(r *http.Request) { r.Header.Del("X-Amz-Content-Sha256") },
			code: s3err.InvalidRequest},
		{name: "unknown payload hash", payload: "SOMETHING-ELSE", code: s3err.InvalidArgument},
		{name: "unsigned x-amz header", server: func(r *http.Request) { r.Header.Set("X-Amz-Copy-Source", "other/key") },
			code: s3err.AccessDenied},
		{name: "unsorted signed headers",
			server:  editAuthorization("host;x-amz-content-sha256;x-amz-date", "x-amz-content-sha256;host;x-amz-date"),
			code:    s3err.SignatureDoesNotMatch,
			message: "sorted"},
		{name: "signed content-length 0", method: http.MethodGet, payload: sha256Hex(nil),
			server: func(r *http.Request) {
				r.Header.Set("Content-Length", "0")
				editAuthorization("SignedHeaders=", "SignedHeaders=content-length;")(r)
			},
			code: s3err.SignatureDoesNotMatch, message: "content-length"},
		{name: "signed header missing", headers: map[string]string{"X-Amz-Meta-A": "1"},
			server: func(r *http.Request) { r.Header.Del("X-Amz-Meta-A") }, code: s3err.SignatureDoesNotMatch},
		{name: "Date instead of X-Amz-Date",
			server: func(r *http.Request) {
				r.Header.Del("X-Amz-Date")
				r.Header.Set("Date", testTime.Format(http.TimeFormat))
			},
			code: s3err.SignatureDoesNotMatch, message: "x-amz-date"},
		{name: "Date header skewed",
			server: func(r *http.Request) {
				r.Header.Del("X-Amz-Date")
				r.Header.Set("Date", testTime.Add(time.Hour).Format(http.TimeFormat))
			},
			code: s3err.RequestTimeTooSkewed},
		{name: "no date", server: func(r *http.Request) { r.Header.Del("X-Amz-Date") }, code: s3err.AccessDenied},
		{name: "malformed X-Amz-Date", server: func(r *http.Request) { r.Header.Set("X-Amz-Date", "2026-12-07T12:00:00Z") },
			code: s3err.AccessDenied},
		{name: "scope date not X-Amz-Date", server: editAuthorization("/20261207/", "/20261206/"),
			code: s3err.AuthorizationHeaderMalformed},
		{name: "components reordered without spaces", server: func(r *http.Request) {
			a, _ := parseAuthorization(r.Header.Get("Authorization"))
			r.Header.Set("Authorization", algorithm+" Signature="+hex.EncodeToString(a.signature)+
				",SignedHeaders="+a.signedHeaders+",Credential="+a.accessKey+"/"+a.scope())
		}},
		{name: "two Authorization headers",
			server: func(r *http.Request) { r.Header.Add("Authorization", r.Header.Get("Authorization")) },
			code:   s3err.AuthorizationHeaderMalformed},
		{name: "query auth as well", server: func(r *http.Request) { setTarget(r, "/bucket/key?X-Amz-Credential=x") },
			code: s3err.InvalidArgument},
		{name: "signature version 2", server: func(r *http.Request) { r.Header.Set("Authorization", "AWS "+testAccessKey+":c2lnbmF0dXJl") },
			code: s3err.InvalidRequest},
		{name: "sigv4a", server: editAuthorization(algorithm, "AWS4-ECDSA-P256-SHA256"), code: s3err.InvalidArgument},
		{name: "malformed query", server: func(r *http.Request) { setTarget(r, "/bucket/key?a=%zz") },
			code: s3err.InvalidArgument},
	}
	for _, c := range cases {
		t.Run(c.name, c.run)
	}
	// A client may sign headers the SDK signer skips (user-agent, expect); the
	// test signs them through lower-case map keys and sends them canonically.
	t.Run("user-agent and expect signed", func(t *testing.T) {
		req := clientRequest(t, http.MethodPut, "/bucket/key", helloWorld)
		req.Header["user-agent"] = []string{"loft-test/1"}
		req.Header["expect"] = []string{"100-continue"}
		signHeader(t, req, sha256Hex(helloWorld), testSecret, testTime)
		if !strings.Contains(req.Header.Get("Authorization"), "expect;host;user-agent;") {
			t.Fatalf("the test did not sign user-agent and expect: %s", req.Header.Get("Authorization"))
		}
		for _, k := range []string{"user-agent", "expect"} {
			req.Header[http.CanonicalHeaderKey(k)] = req.Header[k]
			delete(req.Header, k)
		}
		r := overWire(t, req)
		_, _, err := verifyAll(testVerifier(testTime), r)
		wantCode(t, err, "")
		r = overWire(t, func() *http.Request {
			req.Body = io.NopCloser(bytes.NewReader(helloWorld))
			req.Header.Set("User-Agent", "other/2")
			return req
		}())
		_, _, err = verifyAll(testVerifier(testTime), r)
		wantCode(t, err, s3err.SignatureDoesNotMatch)
	})
	t.Run("any region", func(t *testing.T) {
		req := clientRequest(t, http.MethodGet, "/bucket/key", nil)
		req.Header.Set("X-Amz-Content-Sha256", sha256Hex(nil))
		if err := testSigner().SignHTTP(context.Background(), testCreds(testSecret), req, sha256Hex(nil), "s3", "eu-west-3", testTime); err != nil {
			t.Fatal(err)
		}
		got, _, err := verifyAll(testVerifier(testTime), overWire(t, req))
		wantCode(t, err, "")
		if got.Region != "eu-west-3" {
			t.Fatalf("region %q", got.Region)
		}
	})
	t.Run("other service", func(t *testing.T) {
		req := clientRequest(t, http.MethodGet, "/bucket/key", nil)
		req.Header.Set("X-Amz-Content-Sha256", sha256Hex(nil))
		if err := testSigner().SignHTTP(context.Background(), testCreds(testSecret), req, sha256Hex(nil), "s3x", testRegion, testTime); err != nil {
			t.Fatal(err)
		}
		_, _, err := verifyAll(testVerifier(testTime), overWire(t, req))
		wantCode(t, err, s3err.AuthorizationHeaderMalformed)
	})
	t.Run("truncated body", func(t *testing.T) {
		req := clientRequest(t, http.MethodPut, "/bucket/key", helloWorld)
		signHeader(t, req, sha256Hex(helloWorld), testSecret, testTime)
		var wire bytes.Buffer
		if err := req.Write(&wire); err != nil {
			t.Fatal(err)
		}
		raw := wire.Bytes()[:wire.Len()-4]
		_, _, err := verifyAll(testVerifier(testTime), readWire(t, raw))
		wantCode(t, err, s3err.IncompleteBody)
	})
}

func TestAuthorizationMalformed(t *testing.T) {
	const cred = "Credential=" + testAccessKey + "/20261207/us-east-1/s3/aws4_request"
	const sig = "Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	cases := []struct {
		name, value string
		code        s3err.Code
	}{
		{"no components", algorithm, s3err.AuthorizationHeaderMalformed},
		{"missing signature", algorithm + " " + cred + ", SignedHeaders=host", s3err.AuthorizationHeaderMalformed},
		{"missing credential", algorithm + " SignedHeaders=host, " + sig, s3err.AuthorizationHeaderMalformed},
		{"duplicate component", algorithm + " " + cred + ", " + cred + ", SignedHeaders=host, " + sig, s3err.AuthorizationHeaderMalformed},
		{"unknown component", algorithm + " " + cred + ", SignedHeaders=host, " + sig + ", Extra=1", s3err.AuthorizationHeaderMalformed},
		{"component without =", algorithm + " " + cred + ", SignedHeaders, " + sig, s3err.AuthorizationHeaderMalformed},
		{"short credential", algorithm + " Credential=AK/20261207/us-east-1/s3, SignedHeaders=host, " + sig, s3err.AuthorizationHeaderMalformed},
		{"empty access key", algorithm + " Credential=/20261207/us-east-1/s3/aws4_request, SignedHeaders=host, " + sig, s3err.AuthorizationHeaderMalformed},
		{"bad date", algorithm + " Credential=AK/2026127/us-east-1/s3/aws4_request, SignedHeaders=host, " + sig, s3err.AuthorizationHeaderMalformed},
		{"wrong service", algorithm + " Credential=AK/20261207/us-east-1/ec2/aws4_request, SignedHeaders=host, " + sig, s3err.AuthorizationHeaderMalformed},
		{"wrong terminator", algorithm + " Credential=AK/20261207/us-east-1/s3/aws5_request, SignedHeaders=host, " + sig, s3err.AuthorizationHeaderMalformed},
		{"no host signed", algorithm + " " + cred + ", SignedHeaders=x-amz-date, " + sig, s3err.AuthorizationHeaderMalformed},
		{"empty header name", algorithm + " " + cred + ", SignedHeaders=host;;x-amz-date, " + sig, s3err.AuthorizationHeaderMalformed},
		{"upper-case header name", algorithm + " " + cred + ", SignedHeaders=Host, " + sig, s3err.AuthorizationHeaderMalformed},
		{"short signature", algorithm + " " + cred + ", SignedHeaders=host, Signature=abcd", s3err.AuthorizationHeaderMalformed},
		{"non-hex signature", algorithm + " " + cred + ", SignedHeaders=host, Signature=" + strings.Repeat("z", 64), s3err.AuthorizationHeaderMalformed},
		{"unknown algorithm", "AWS4-HMAC-SHA512 " + cred + ", SignedHeaders=host, " + sig, s3err.InvalidArgument},
		{"bearer", "Bearer abc", s3err.InvalidArgument},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseAuthorization(c.value)
			wantCode(t, err, c.code)
			r := overWire(t, clientRequest(t, http.MethodGet, "/bucket/key", nil))
			r.Header.Set("Authorization", c.value)
			r.Header.Set("X-Amz-Date", testTime.Format(amzDateLayout))
			r.Header.Set("X-Amz-Content-Sha256", sha256Hex(nil))
			_, err = testVerifier(testTime).Verify(context.Background(), r)
			wantCode(t, err, c.code)
		})
	}
	a, err := parseAuthorization(algorithm + "   " + sig + " ,SignedHeaders=host;x-amz-date,  " + cred)
	wantCode(t, err, "")
	if a.accessKey != testAccessKey || a.region != "us-east-1" || a.date != "20261207" || a.signedHeaders != "host;x-amz-date" {
		t.Fatalf("parsed %+v", a)
	}
}

// presignCase is a URL presigned by the SDK signer, changed on its way to Verify.
type presignCase struct {
	name    string
	method  string // default GET
	target  string // default /bucket/key
	body    []byte
	expires string // default 900; "-" for none
	payload string // X-Amz-Content-Sha256 put in the query; "" for none (UNSIGNED-PAYLOAD)
	headers map[string]string
	secret  string
	at      time.Time // signing time; default testTime
	now     time.Time // verifier's time; default testTime
	client  func(*http.Request)
	server  func(*http.Request)
	code    s3err.Code
	message string
}

func (c presignCase) run(t *testing.T) {
	method, target, secret, at, now := c.method, c.target, c.secret, c.at, c.now
	if method == "" {
		method = http.MethodGet
	}
	if target == "" {
		target = "/bucket/key"
	}
	if secret == "" {
		secret = testSecret
	}
	if at.IsZero() {
		at = testTime
	}
	if now.IsZero() {
		now = testTime
	}
	u, err := url.Parse("http://" + testHost + target)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	switch c.expires {
	case "":
		q.Set("X-Amz-Expires", "900")
	case "-":
	default:
		q.Set("X-Amz-Expires", c.expires)
	}
	payload := unsignedPayload
	if c.payload != "" {
		payload = c.payload
		q.Set("X-Amz-Content-Sha256", c.payload)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequest(method, u.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	signed, header, err := testSigner().PresignHTTP(context.Background(), testCreds(secret), req, payload, "s3", testRegion, at)
	if err != nil {
		t.Fatal(err)
	}
	out, err := http.NewRequest(method, signed, bytes.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	if c.body == nil {
		out.Body, out.ContentLength = nil, 0
	}
	for k, vs := range header {
		if k != "Host" {
			out.Header[k] = vs
		}
	}
	if c.client != nil {
		c.client(out)
	}
	r := overWire(t, out)
	if c.server != nil {
		c.server(r)
	}
	got, data, err := verifyAll(testVerifier(now), r)
	wantCode(t, err, c.code)
	if c.message != "" && !strings.Contains(err.Error(), c.message) {
		t.Fatalf("error %q does not mention %q", err, c.message)
	}
	if err != nil {
		return
	}
	if !bytes.Equal(data, c.body) && !(len(data) == 0 && len(c.body) == 0) {
		t.Fatalf("body %q, want %q", data, c.body)
	}
	if got.AccessKey != testAccessKey || got.Region != testRegion {
		t.Fatalf("request %+v", got)
	}
}

// editQuery rewrites the raw query of a server request.
func editQuery(old, new string) func(*http.Request) {
	return func(r *http.Request) {
		path, query, _ := strings.Cut(r.RequestURI, "?")
		setTarget(r, path+"?"+strings.Replace(query, old, new, 1))
	}
}

func TestPresigned(t *testing.T) {
	cases := []presignCase{
		{name: "GET"},
		{name: "PUT", method: http.MethodPut, body: helloWorld},
		{name: "odd key", target: "/bucket/a%20b/%C3%BC%2B%3D%26~%2A%25//x"},
		{name: "odd query", target: "/bucket?list-type=2&prefix=a%20b%2B%C3%BC%3D%26~%2A%25"},
		{name: "signed header", method: http.MethodPut, body: helloWorld, headers: map[string]string{"X-Amz-Meta-A": "1", "Content-Type": "text/plain"}},
		{name: "payload digest", method: http.MethodPut, body: helloWorld, payload: sha256Hex(helloWorld)},
		{name: "payload digest, tampered body", method: http.MethodPut, body: helloWorld, payload: sha256Hex(helloWorld),
			client: func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader("HELLO world")) },
			code:   s3err.XAmzContentSHA256Mismatch},
		{name: "before expiry", now: testTime.Add(900 * time.Second)},
		{name: "expired", now: testTime.Add(901 * time.Second), code: s3err.AccessDenied, message: "Request has expired"},
		{name: "future within skew", at: testTime.Add(10 * time.Minute)},
		{name: "future beyond skew", at: testTime.Add(16 * time.Minute), code: s3err.AccessDenied, message: "not valid yet"},
		{name: "expires zero", expires: "0", code: s3err.AuthorizationQueryParametersError},
		{name: "expires beyond a week", expires: "604801", code: s3err.AuthorizationQueryParametersError},
		{name: "expires a week", expires: "604800", now: testTime.Add(7 * 24 * time.Hour)},
		{name: "expires negative", expires: "-5", code: s3err.AuthorizationQueryParametersError},
		{name: "expires not a number", expires: "ten", code: s3err.AuthorizationQueryParametersError},
		{name: "expires missing", expires: "-", code: s3err.AuthorizationQueryParametersError},
		{name: "wrong secret", secret: "nope", code: s3err.SignatureDoesNotMatch},
		{name: "unknown key", server: editQuery("X-Amz-Credential="+testAccessKey, "X-Amz-Credential=NOSUCHKEY"),
			code: s3err.InvalidAccessKeyID},
		{name: "tampered path", server: func(r *http.Request) {
			_, query, _ := strings.Cut(r.RequestURI, "?")
			setTarget(r, "/bucket/other?"+query)
		}, code: s3err.SignatureDoesNotMatch},
		{name: "tampered expiry", server: editQuery("X-Amz-Expires=900", "X-Amz-Expires=901"), code: s3err.SignatureDoesNotMatch},
		{name: "added parameter", server: editQuery("X-Amz-Expires=900", "X-Amz-Expires=900&acl="), code: s3err.SignatureDoesNotMatch},
		{name: "duplicated date", server: editQuery("X-Amz-Expires=900", "X-Amz-Expires=900&X-Amz-Date=20261207T120000Z"),
			code: s3err.AuthorizationQueryParametersError},
		{name: "other algorithm", server: editQuery("X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-HMAC-SHA1"),
			code: s3err.AuthorizationQueryParametersError},
		{name: "missing signature", server: func(r *http.Request) {
			path, query, _ := strings.Cut(r.RequestURI, "?")
			q, _ := url.ParseQuery(query)
			q.Del("X-Amz-Signature")
			setTarget(r, path+"?"+q.Encode())
		}, code: s3err.AuthorizationQueryParametersError},
		{name: "no host signed", server: editQuery("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=x-amz-date"),
			code: s3err.AuthorizationQueryParametersError},
		{name: "scope date not X-Amz-Date", server: editQuery("%2F20261207%2F", "%2F20261206%2F"),
			code: s3err.AuthorizationQueryParametersError},
		{name: "signed header missing", headers: map[string]string{"X-Amz-Meta-A": "1"},
			server: func(r *http.Request) { r.Header.Del("X-Amz-Meta-A") }, code: s3err.SignatureDoesNotMatch},
		{name: "unsigned x-amz header", server: func(r *http.Request) { r.Header.Set("X-Amz-Copy-Source", "secret/object") },
			code: s3err.AccessDenied},
		{name: "signature version 2", server: func(r *http.Request) { setTarget(r, "/bucket/key?AWSAccessKeyId=AK&Expires=1&Signature=x") },
			code: s3err.InvalidRequest},
	}
	for _, c := range cases {
		t.Run(c.name, c.run)
	}
}

func TestAnonymous(t *testing.T) {
	md5sum := md5.Sum(helloWorld)
	crc := binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(helloWorld))
	cases := []struct {
		name    string
		headers map[string]string
		body    []byte
		code    s3err.Code
		check   func(*testing.T, *Request)
	}{
		{name: "plain", check: func(t *testing.T, r *Request) {
			if r.AccessKey != "" || r.Region != "" || r.Length != int64(len(helloWorld)) || len(r.Checksums) != 0 || r.MD5 != "" {
				t.Fatalf("request %+v", r)
			}
		}},
		{name: "Content-MD5", headers: map[string]string{"Content-MD5": base64.StdEncoding.EncodeToString(md5sum[:])},
			check: func(t *testing.T, r *Request) {
				if r.MD5 != base64.StdEncoding.EncodeToString(md5sum[:]) {
					t.Fatalf("MD5 %q", r.MD5)
				}
			}},
		{name: "wrong Content-MD5", headers: map[string]string{"Content-MD5": base64.StdEncoding.EncodeToString(make([]byte, 16))},
			code: s3err.BadDigest},
		{name: "malformed Content-MD5", headers: map[string]string{"Content-MD5": "not base64!"}, code: s3err.InvalidDigest},
		{name: "short Content-MD5", headers: map[string]string{"Content-MD5": "AAAA"}, code: s3err.InvalidDigest},
		{name: "CRC32", headers: map[string]string{"X-Amz-Checksum-Crc32": base64.StdEncoding.EncodeToString(crc)},
			check: func(t *testing.T, r *Request) {
				if r.Checksums["CRC32"] != base64.StdEncoding.EncodeToString(crc) || len(r.Checksums) != 1 {
					t.Fatalf("checksums %v", r.Checksums)
				}
			}},
		{name: "wrong CRC32", headers: map[string]string{"X-Amz-Checksum-Crc32": "AAAAAA=="}, code: s3err.BadDigest},
		{name: "content digest", headers: map[string]string{"X-Amz-Content-Sha256": sha256Hex(helloWorld)}},
		{name: "wrong content digest", headers: map[string]string{"X-Amz-Content-Sha256": sha256Hex(nil)},
			code: s3err.XAmzContentSHA256Mismatch},
		{name: "signed chunks without a signature", headers: map[string]string{
			"X-Amz-Content-Sha256": streamingSigned, "X-Amz-Decoded-Content-Length": "11"}, code: s3err.InvalidRequest},
		{name: "unsigned trailer",
			body: encodeChunks(helloWorld, 4, nil, []string{"x-amz-checksum-crc32:" + base64.StdEncoding.EncodeToString(crc)}),
			headers: map[string]string{
				"X-Amz-Content-Sha256": streamingUnsignedTrailer, "X-Amz-Decoded-Content-Length": "11",
				"X-Amz-Trailer": "x-amz-checksum-crc32", "Content-Encoding": "aws-chunked"},
			check: func(t *testing.T, r *Request) {
				if r.Length != 11 || r.Checksums["CRC32"] == "" {
					t.Fatalf("request %+v", r)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := c.body
			if body == nil {
				body = helloWorld
			}
			req := clientRequest(t, http.MethodPut, "/bucket/key", body)
			for k, v := range c.headers {
				req.Header.Set(k, v)
			}
			got, data, err := verifyAll(testVerifier(testTime), overWire(t, req))
			wantCode(t, err, c.code)
			if err != nil {
				return
			}
			if !bytes.Equal(data, helloWorld) {
				t.Fatalf("body %q", data)
			}
			if c.check != nil {
				c.check(t, got)
			}
		})
	}
}

func TestChecksumHeaders(t *testing.T) {
	crc32c := crc32.Checksum(helloWorld, crc32.MakeTable(crc32.Castagnoli))
	sha1sum, sha256sum, sha512sum, md5sum := sha1.Sum(helloWorld), sha256.Sum256(helloWorld), sha512.Sum512(helloWorld), md5.Sum(helloWorld)
	b64 := base64.StdEncoding.EncodeToString
	cases := []struct {
		header, name, value string
	}{
		{"X-Amz-Checksum-Crc32", "CRC32", "DUoRhQ=="}, // the AWS SDK's own test vector
		{"X-Amz-Checksum-Crc32c", "CRC32C", b64(binary.BigEndian.AppendUint32(nil, crc32c))},
		{"X-Amz-Checksum-Crc64nvme", "CRC64NVME", "jSnVw/bqjr4="}, // the AWS SDK's own test vector
		{"X-Amz-Checksum-Sha1", "SHA1", b64(sha1sum[:])},
		{"X-Amz-Checksum-Sha256", "SHA256", b64(sha256sum[:])},
		{"X-Amz-Checksum-Sha512", "SHA512", b64(sha512sum[:])},
		{"X-Amz-Checksum-Md5", "MD5", b64(md5sum[:])},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			signedCase{headers: map[string]string{c.header: c.value}, check: func(t *testing.T, r *Request) {
				if len(r.Checksums) != 1 || r.Checksums[c.name] != c.value {
					t.Fatalf("checksums %v", r.Checksums)
				}
			}}.run(t)
			wrong, _ := base64.StdEncoding.DecodeString(c.value)
			wrong[0] ^= 1
			signedCase{headers: map[string]string{c.header: b64(wrong)}, code: s3err.BadDigest}.run(t)
			signedCase{headers: map[string]string{c.header: c.value[4:]}, code: s3err.InvalidRequest}.run(t)
		})
	}
	t.Run("two checksums", func(t *testing.T) {
		signedCase{headers: map[string]string{cases[0].header: cases[0].value, cases[3].header: cases[3].value},
			code: s3err.InvalidRequest}.run(t)
	})
	t.Run("unsupported algorithm", func(t *testing.T) {
		signedCase{headers: map[string]string{"X-Amz-Checksum-Xxhash64": "AAAAAAAAAAA="}, code: s3err.InvalidRequest}.run(t)
	})
	t.Run("not a value", func(t *testing.T) {
		signedCase{headers: map[string]string{"X-Amz-Checksum-Type": "FULL_OBJECT", "X-Amz-Sdk-Checksum-Algorithm": "CRC32"},
			check: func(t *testing.T, r *Request) {
				if len(r.Checksums) != 0 {
					t.Fatalf("checksums %v", r.Checksums)
				}
			}}.run(t)
	})
	t.Run("a completion's object checksum", func(t *testing.T) {
		// CompleteMultipartUpload's x-amz-checksum-* is the object's, not
		// its body's: left to the gateway (this value, with its part
		// count, is no body checksum the verifier would take).
		signedCase{method: http.MethodPost, target: "/bucket/key?uploadId=u1", headers: map[string]string{"X-Amz-Checksum-Crc32c": "AAAAAA==-2"},
			check: func(t *testing.T, r *Request) {
				if len(r.Checksums) != 0 {
					t.Fatalf("checksums %v", r.Checksums)
				}
			}}.run(t)
	})
	t.Run("Content-MD5 and checksum", func(t *testing.T) {
		signedCase{headers: map[string]string{"Content-MD5": b64(md5sum[:]), cases[1].header: cases[1].value},
			check: func(t *testing.T, r *Request) {
				if r.MD5 != b64(md5sum[:]) || r.Checksums["CRC32C"] != cases[1].value {
					t.Fatalf("request %+v", r)
				}
			}}.run(t)
		signedCase{headers: map[string]string{"Content-MD5": b64(make([]byte, 16)), cases[1].header: cases[1].value},
			code: s3err.BadDigest}.run(t)
	})
}

func TestCRC64NVME(t *testing.T) {
	alg, ok := checksumAlgorithmOf("crc64nvme")
	if !ok {
		t.Fatal("no crc64nvme")
	}
	h := alg.new()
	h.Write([]byte("123456789"))
	// The check value of CRC-64/NVME in the catalogue of parametrised CRCs.
	if got := binary.BigEndian.Uint64(h.Sum(nil)); got != 0xae8b14860a799888 {
		t.Fatalf("check value %x", got)
	}
}

func TestStripAWSChunked(t *testing.T) {
	for in, want := range map[string]string{
		"aws-chunked":         "",
		"aws-chunked,gzip":    "gzip",
		"gzip, aws-chunked":   "gzip",
		"gzip,AWS-Chunked,br": "gzip,br",
		"":                    "",
		"identity":            "identity",
	} {
		if got := StripAWSChunked(in); got != want {
			t.Errorf("StripAWSChunked(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestKeyStoreFailure(t *testing.T) {
	req := clientRequest(t, http.MethodGet, "/bucket/key", nil)
	signHeader(t, req, sha256Hex(nil), testSecret, testTime)
	v := testVerifier(testTime)
	v.Keys = failingKeys{}
	_, err := v.Verify(context.Background(), overWire(t, req))
	wantCode(t, err, s3err.InternalError)
}

type failingKeys struct{}

func (failingKeys) Secret(context.Context, string) (string, error) { return "", io.ErrClosedPipe }
