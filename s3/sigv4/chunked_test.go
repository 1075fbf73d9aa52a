package sigv4

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/loftstore/loft/s3/s3err"
)

// streamData is 200 bytes in which "world" occurs only once, in the data.
var streamData = []byte(strings.Repeat("0123456789", 9) + "hello world" + strings.Repeat("abcdefghij", 9) + "xyzxyzxyz")

func crc32Trailer(data []byte) string {
	return "x-amz-checksum-crc32:" + base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(data)))
}

// streamCase is an aws-chunked upload, header-signed by the SDK signer with
// mode as its x-amz-content-sha256, its chunks framed and signed by the
// tests' own encoder.
type streamCase struct {
	name     string
	mode     string
	data     []byte // default streamData
	chunk    int    // default 64
	trailers []string
	headers  map[string]string // set before signing; "" deletes
	seed     string            // chain the chunks from this instead of the request signature
	tamper   func([]byte) []byte
	server   func(*http.Request)
	code     s3err.Code
	check    func(*testing.T, *Request)
}

func (c streamCase) request(t *testing.T) *http.Request {
	data, chunk := c.data, c.chunk
	if data == nil {
		data = streamData
	}
	if chunk == 0 {
		chunk = 64
	}
	req := clientRequest(t, http.MethodPut, "/bucket/key", nil)
	req.Header.Set("Content-Encoding", "aws-chunked")
	req.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(data)))
	if c.trailers != nil && c.mode != streamingSigned {
		req.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
	}
	for k, v := range c.headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	signHeader(t, req, c.mode, testSecret, testTime)
	var signer *chunkSigner
	if c.mode != streamingUnsignedTrailer {
		a, err := parseAuthorization(req.Header.Get("Authorization"))
		if err != nil {
			t.Fatal(err)
		}
		seed := hex.EncodeToString(a.signature)
		if c.seed != "" {
			seed = c.seed
		}
		signer = newChunkSigner(testSecret, testTime.Format(amzDateLayout), testRegion, seed)
	}
	body := encodeChunks(data, chunk, signer, c.trailers)
	if c.tamper != nil {
		body = c.tamper(body)
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	r := overWire(t, req)
	if c.server != nil {
		c.server(r)
	}
	return r
}

func (c streamCase) run(t *testing.T) {
	got, data, err := verifyAll(testVerifier(testTime), c.request(t))
	wantCode(t, err, c.code)
	if err != nil {
		return
	}
	want := c.data
	if want == nil {
		want = streamData
	}
	if !bytes.Equal(data, want) {
		t.Fatalf("body %q, want %q", data, want)
	}
	wantLength := int64(len(want))
	if v, ok := c.headers["X-Amz-Decoded-Content-Length"]; ok && v == "" {
		wantLength = -1
	}
	if got.Length != wantLength {
		t.Fatalf("length %d, want %d", got.Length, wantLength)
	}
	if c.check != nil {
		c.check(t, got)
	}
}

func replace(old, new string) func([]byte) []byte {
	return func(b []byte) []byte {
		if !bytes.Contains(b, []byte(old)) {
			panic(fmt.Sprintf("%q is not in the body", old))
		}
		return bytes.Replace(b, []byte(old), []byte(new), 1)
	}
}

// nthSignature is the n-th chunk-signature value in an encoded body.
func nthSignature(b []byte, n int) string {
	parts := bytes.Split(b, []byte("chunk-signature="))
	return string(parts[n+1][:64])
}

func flipSignature(n int) func([]byte) []byte {
	return func(b []byte) []byte {
		sig := nthSignature(b, n)
		flipped := []byte(sig)
		flipped[10] = map[bool]byte{true: '1', false: '0'}[flipped[10] == '0']
		return bytes.Replace(b, []byte(sig), flipped, 1)
	}
}

func TestStreamingSigned(t *testing.T) {
	cases := []streamCase{
		{name: "several chunks"},
		{name: "one chunk", chunk: 1000},
		{name: "chunks of one byte", chunk: 1},
		{name: "empty body", data: []byte{}},
		{name: "no final CRLF", tamper: func(b []byte) []byte { return b[:len(b)-2] }},
		{name: "tampered data", tamper: replace("world", "World"), code: s3err.SignatureDoesNotMatch},
		{name: "tampered chunk signature", tamper: flipSignature(1), code: s3err.SignatureDoesNotMatch},
		{name: "tampered final signature", tamper: flipSignature(4), code: s3err.SignatureDoesNotMatch},
		{name: "chained from another seed", seed: strings.Repeat("ab", 32), code: s3err.SignatureDoesNotMatch},
		{name: "chunks swapped", data: bytes.Repeat([]byte("ab"), 64), tamper: func(b []byte) []byte {
			s0, s1 := nthSignature(b, 0), nthSignature(b, 1)
			b = bytes.Replace(b, []byte(s0), []byte("SIG0"), 1)
			b = bytes.Replace(b, []byte(s1), []byte(s0), 1)
			return bytes.Replace(b, []byte("SIG0"), []byte(s1), 1)
		}, code: s3err.SignatureDoesNotMatch},
		{name: "truncated in a chunk", tamper: func(b []byte) []byte { return b[:200] }, code: s3err.IncompleteBody},
		{name: "truncated in a header", tamper: func(b []byte) []byte { return b[:120] }, code: s3err.IncompleteBody},
		{name: "no final chunk", tamper: func(b []byte) []byte {
			return b[:bytes.LastIndex(b, []byte("0;chunk-signature"))]
		}, code: s3err.IncompleteBody},
		{name: "chunk size too large", tamper: replace("40;", "41;"), code: s3err.InvalidRequest},
		{name: "chunk size too small", tamper: replace("40;", "3f;"), code: s3err.InvalidRequest},
		{name: "chunk size beyond decoded length", tamper: replace("40;", "fffffff;"), code: s3err.InvalidRequest},
		{name: "decoded length too short", headers: map[string]string{"X-Amz-Decoded-Content-Length": "199"},
			code: s3err.InvalidRequest},
		{name: "decoded length too long", headers: map[string]string{"X-Amz-Decoded-Content-Length": "201"},
			code: s3err.IncompleteBody},
		{name: "decoded length missing", headers: map[string]string{"X-Amz-Decoded-Content-Length": ""}},
		{name: "decoded length missing, truncated", headers: map[string]string{"X-Amz-Decoded-Content-Length": ""},
			tamper: func(b []byte) []byte { return b[:150] }, code: s3err.IncompleteBody},
		{name: "decoded length malformed", headers: map[string]string{"X-Amz-Decoded-Content-Length": "-1"},
			code: s3err.InvalidArgument},
		{name: "data after the final chunk", tamper: func(b []byte) []byte { return append(b, "more"...) },
			code: s3err.InvalidRequest},
		{name: "data in the final chunk", tamper: func(b []byte) []byte { return append(b[:len(b)-2], "x\r\n"...) },
			code: s3err.InvalidRequest},
		{name: "header line too long", tamper: replace("40;", "40;"+strings.Repeat(" ", maxChunkLine)),
			code: s3err.InvalidRequest},
		{name: "header without signature", tamper: func(b []byte) []byte {
			return bytes.Replace(b, []byte(";chunk-signature="+nthSignature(b, 0)), nil, 1)
		}, code: s3err.InvalidRequest},
		{name: "header with LF only", tamper: replace("\r\n", "\n"), code: s3err.InvalidRequest},
		{name: "one byte at a time", server: func(r *http.Request) { r.Body = io.NopCloser(iotest.OneByteReader(r.Body)) }},
		{name: "trailer in a trailerless mode", trailers: []string{crc32Trailer(streamData)},
			code: s3err.InvalidRequest},
	}
	for _, c := range cases {
		c.mode = streamingSigned
		t.Run(c.name, c.run)
	}
}

func TestStreamingSignedTrailer(t *testing.T) {
	good := []string{crc32Trailer(streamData)}
	cases := []streamCase{
		{name: "crc32 trailer", trailers: good, check: func(t *testing.T, r *Request) {
			if r.Checksums["CRC32"] != strings.TrimPrefix(good[0], "x-amz-checksum-crc32:") {
				t.Fatalf("checksums %v", r.Checksums)
			}
		}},
		{name: "empty body", data: []byte{}, trailers: []string{crc32Trailer(nil)}},
		{name: "wrong checksum, signed", trailers: []string{crc32Trailer([]byte("other"))}, code: s3err.BadDigest},
		{name: "checksum changed after signing", trailers: good,
			tamper: replace(good[0], crc32Trailer([]byte("other"))), code: s3err.SignatureDoesNotMatch},
		{name: "tampered trailer signature", trailers: good, tamper: func(b []byte) []byte {
			i := bytes.Index(b, []byte("x-amz-trailer-signature:")) + len("x-amz-trailer-signature:")
			b[i] = map[bool]byte{true: '1', false: '0'}[b[i] == '0']
			return b
		}, code: s3err.SignatureDoesNotMatch},
		{name: "trailer signature missing", trailers: good, tamper: func(b []byte) []byte {
			i := bytes.Index(b, []byte("x-amz-trailer-signature:"))
			return append(b[:i:i], "\r\n"...)
		}, code: s3err.MalformedTrailer},
		{name: "trailer missing", trailers: []string{}, code: s3err.MalformedTrailer},
		// minio-go: "name:value\n", an empty line, then the signature.
		{name: "minio-go's framing", trailers: good, tamper: replace(good[0]+"\r\n", good[0]+"\n\r\n")},
		{name: "tampered data", trailers: good, tamper: replace("world", "World"), code: s3err.SignatureDoesNotMatch},
		{name: "tampered final signature", trailers: good, tamper: flipSignature(4), code: s3err.SignatureDoesNotMatch},
		{name: "no x-amz-trailer", trailers: good, headers: map[string]string{"X-Amz-Trailer": ""},
			code: s3err.InvalidRequest},
		{name: "truncated trailer", trailers: good, tamper: func(b []byte) []byte {
			return b[:bytes.Index(b, []byte("x-amz-checksum-crc32:"))+10]
		}, code: s3err.IncompleteBody},
	}
	for _, c := range cases {
		c.mode = streamingSignedTrailer
		t.Run(c.name, c.run)
	}
}

func TestStreamingUnsignedTrailer(t *testing.T) {
	good := []string{crc32Trailer(streamData)}
	cases := []streamCase{
		{name: "crc32 trailer", trailers: good},
		{name: "one chunk", chunk: 1000, trailers: good},
		{name: "tampered data", trailers: good, tamper: replace("world", "World"), code: s3err.BadDigest},
		{name: "wrong checksum", trailers: []string{crc32Trailer([]byte("other"))}, code: s3err.BadDigest},
		{name: "checksum not base64", trailers: []string{"x-amz-checksum-crc32:!!!!"}, code: s3err.InvalidRequest},
		{name: "trailer in upper case", trailers: []string{strings.ToUpper(good[0][:20]) + good[0][20:]}},
		{name: "undeclared trailer", trailers: []string{good[0], "x-amz-meta-a:1"}, code: s3err.MalformedTrailer},
		{name: "repeated trailer", trailers: []string{good[0], good[0]}, code: s3err.MalformedTrailer},
		{name: "trailer without colon", trailers: []string{"x-amz-checksum-crc32"}, code: s3err.MalformedTrailer},
		{name: "trailer missing", trailers: []string{}, code: s3err.MalformedTrailer},
		{name: "trailer signature in unsigned mode", trailers: []string{good[0], "x-amz-trailer-signature:" + strings.Repeat("0", 64)},
			code: s3err.MalformedTrailer},
		{name: "no final CRLF", trailers: good, tamper: func(b []byte) []byte { return b[:len(b)-2] }},
		// minio-go writes "0\r\n" + "name:value\n" + "\r\n\r\n".
		{name: "minio-go's framing", trailers: good, tamper: func(b []byte) []byte {
			i := bytes.LastIndex(b, []byte(good[0]))
			return append(b[:i:i], good[0]+"\n\r\n\r\n"...)
		}},
		{name: "minio-go's framing, wrong checksum", trailers: []string{crc32Trailer([]byte("other"))}, tamper: func(b []byte) []byte {
			bad := crc32Trailer([]byte("other"))
			i := bytes.LastIndex(b, []byte(bad))
			return append(b[:i:i], bad+"\n\r\n\r\n"...)
		}, code: s3err.BadDigest},
		{name: "garbage after the trailer", trailers: good, tamper: func(b []byte) []byte { return append(b, "xx"...) }, code: s3err.InvalidRequest},
		{name: "chunk signature in unsigned mode", trailers: good, tamper: replace("40\r\n", "40;chunk-signature="+strings.Repeat("0", 64)+"\r\n"),
			code: s3err.InvalidRequest},
		{name: "unsupported trailer", trailers: good, headers: map[string]string{"X-Amz-Trailer": "x-amz-checksum-xxhash64"},
			code: s3err.InvalidRequest},
		{name: "two checksums", trailers: good, headers: map[string]string{"X-Amz-Checksum-Sha256": base64.StdEncoding.EncodeToString(make([]byte, 32))},
			code: s3err.InvalidRequest},
		{name: "decoded length missing", trailers: good, headers: map[string]string{"X-Amz-Decoded-Content-Length": ""}},
		{name: "one byte at a time", trailers: good, server: func(r *http.Request) { r.Body = io.NopCloser(iotest.OneByteReader(r.Body)) }},
	}
	for _, c := range cases {
		c.mode = streamingUnsignedTrailer
		t.Run(c.name, c.run)
	}
}

// TestBodyErrorIsFinal checks the Body contract: data comes out before the
// check that covers it, the error takes the place of io.EOF and stays.
func TestBodyErrorIsFinal(t *testing.T) {
	r := streamCase{mode: streamingSigned, tamper: replace("xyzxyz", "xyzXyz")}.request(t)
	req, err := testVerifier(testTime).Verify(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 7)
	for {
		n, err := req.Body.Read(buf)
		got = append(got, buf[:n]...)
		if errors.Is(err, io.EOF) {
			t.Fatal("io.EOF after tampered data")
		}
		if err != nil {
			wantCode(t, err, s3err.SignatureDoesNotMatch)
			break
		}
	}
	if len(got) != len(streamData) {
		t.Fatalf("read %d bytes before the error, want all %d", len(got), len(streamData))
	}
	if _, err := req.Body.Read(buf); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("read after the error: %v", err)
	}
	if req.Checksums != nil {
		t.Fatalf("checksums %v after a failure", req.Checksums)
	}
}

// The example of AWS's documentation "Signature Calculations for the
// Authorization Header: Transferring Payload in Multiple Chunks": a PUT of
// 66560 bytes of 'a' in chunks of 65536, 1024 and 0 bytes. The signatures
// are the documented ones (also in aws-crt-swift's ChunkSignerTests, with
// the request's SignedHeaders).
const (
	docAccessKey = "AKIAIOSFODNN7EXAMPLE"
	docSecret    = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	docAmzDate   = "20130524T000000Z"
	docSeed      = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
	docChunk1    = "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
	docChunk2    = "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
	docFinal     = "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
	// aws-crt-swift ChunkSignerTests: the trailer first:1st, second:2nd,
	// third:3rd signed after docFinal.
	crtTrailerSignature = "df5735bd9f3295cd9386572292562fefc93ba94e80a0a1ddcbd652c4e0a75e6c"
)

func docRequest(t *testing.T, corrupt bool) *http.Request {
	var body bytes.Buffer
	for _, c := range []struct {
		size int
		sig  string
	}{{65536, docChunk1}, {1024, docChunk2}, {0, docFinal}} {
		fmt.Fprintf(&body, "%x;chunk-signature=%s\r\n", c.size, c.sig)
		data := bytes.Repeat([]byte("a"), c.size)
		if corrupt && c.size == 1024 {
			data[100] = 'b'
		}
		body.Write(data)
		body.WriteString("\r\n")
	}
	if body.Len() != 66824 {
		t.Fatalf("encoded %d bytes, the example has 66824", body.Len())
	}
	head := "PUT /examplebucket/chunkObject.txt HTTP/1.1\r\n" +
		"Host: s3.amazonaws.com\r\n" +
		"x-amz-date: " + docAmzDate + "\r\n" +
		"x-amz-storage-class: REDUCED_REDUNDANCY\r\n" +
		"Authorization: AWS4-HMAC-SHA256 Credential=" + docAccessKey + "/20130524/us-east-1/s3/aws4_request, " +
		"SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class, " +
		"Signature=" + docSeed + "\r\n" +
		"x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD\r\n" +
		"Content-Encoding: aws-chunked\r\n" +
		"x-amz-decoded-content-length: 66560\r\n" +
		"Content-Length: 66824\r\n\r\n"
	return readWire(t, append([]byte(head), body.Bytes()...))
}

func TestAWSDocumentationExample(t *testing.T) {
	v := &Verifier{
		Keys: staticKeys{docAccessKey: docSecret},
		Now:  func() time.Time { return time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC) },
	}
	req, data, err := verifyAll(v, docRequest(t, false))
	wantCode(t, err, "")
	if !bytes.Equal(data, bytes.Repeat([]byte("a"), 66560)) || req.Length != 66560 {
		t.Fatalf("decoded %d bytes, length %d", len(data), req.Length)
	}
	if got := StripAWSChunked(docRequest(t, false).Header.Get("Content-Encoding")); got != "" {
		t.Fatalf("content-encoding %q", got)
	}
	_, _, err = verifyAll(v, docRequest(t, true))
	wantCode(t, err, s3err.SignatureDoesNotMatch)
}

func TestChainSignerKnownAnswers(t *testing.T) {
	seed, _ := hex.DecodeString(docSeed)
	s := &chainSigner{key: signingKey(docSecret, "20130524", "us-east-1"), amzDate: docAmzDate,
		scope: "20130524/us-east-1/s3/aws4_request", prev: seed}
	for i, c := range []struct {
		size int
		want string
	}{{65536, docChunk1}, {1024, docChunk2}, {0, docFinal}} {
		sum := sha256Sum(bytes.Repeat([]byte("a"), c.size))
		if got := hex.EncodeToString(s.chunk(sum)); got != c.want {
			t.Fatalf("chunk %d: signature %s, want %s", i, got, c.want)
		}
	}
	names := []string{"first", "second", "third"}
	values := map[string]string{"first": "1st", "second": "2nd", "third": "3rd"}
	if got := hex.EncodeToString(s.trailer(trailerCanonical(names, values))); got != crtTrailerSignature {
		t.Fatalf("trailer signature %s, want %s", got, crtTrailerSignature)
	}
}

// TestChainSignerMatchesSDK checks the package's chunk signature against the
// SDK's StreamSigner, which computes it from the whole chunk with empty headers.
func TestChainSignerMatchesSDK(t *testing.T) {
	seed, _ := hex.DecodeString(docSeed)
	ours := &chainSigner{key: signingKey(testSecret, "20261207", "eu-central-1"), amzDate: testTime.Format(amzDateLayout),
		scope: "20261207/eu-central-1/s3/aws4_request", prev: seed}
	sdk := v4.NewStreamSigner(testCreds(testSecret), "s3", "eu-central-1", seed)
	for _, size := range []int{1, 100, 8192, 65536, 0} {
		chunk := bytes.Repeat([]byte{byte(size)}, size)
		want, err := sdk.GetSignature(context.Background(), nil, chunk, testTime)
		if err != nil {
			t.Fatal(err)
		}
		if got := ours.chunk(sha256Sum(chunk)); !bytes.Equal(got, want) {
			t.Fatalf("size %d: %x, the SDK says %x", size, got, want)
		}
	}
}

func sha256Sum(b []byte) []byte {
	sum, _ := hex.DecodeString(sha256Hex(b))
	return sum
}
