package sigv4

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/loftstore/loft/s3/s3err"
)

// wantS3Error fails unless err is an *s3err.Error.
func wantS3Error(t *testing.T, err error) {
	t.Helper()
	if _, ok := s3err.As(err); !ok {
		t.Fatalf("error %v is not an s3err.Error", err)
	}
}

func FuzzParseAuthorization(f *testing.F) {
	const sig = "Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, seed := range []string{
		algorithm + " Credential=AK/20261207/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, " + sig,
		algorithm + " " + sig + ",SignedHeaders=host,Credential=AK/20261207/eu-west-3/s3/aws4_request",
		algorithm + " Credential=AK/20261207/us-east-1/s3/aws4_request, SignedHeaders=x-amz-date, " + sig,
		algorithm + " Credential=AK/2026/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=00",
		algorithm,
		"AWS AK:c2ln",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		a, err := parseAuthorization(value)
		if err != nil {
			wantS3Error(t, err)
			return
		}
		if len(a.signature) != 32 || a.accessKey == "" || a.region == "" ||
			!strings.Contains(";"+a.signedHeaders+";", ";host;") {
			t.Fatalf("accepted %q as %+v", value, a)
		}
		again, err := parseAuthorization(fmt.Sprintf("%s Credential=%s/%s, SignedHeaders=%s, Signature=%x",
			algorithm, a.accessKey, a.scope(), a.signedHeaders, a.signature))
		if err != nil || again.accessKey != a.accessKey || again.scope() != a.scope() ||
			again.signedHeaders != a.signedHeaders || !bytes.Equal(again.signature, a.signature) {
			t.Fatalf("%q: reformatted %+v, %v", value, again, err)
		}
	})
}

func FuzzParsePresign(f *testing.F) {
	for _, seed := range []string{
		"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20261207%2Fus-east-1%2Fs3%2Faws4_request" +
			"&X-Amz-Date=20261207T120000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host" +
			"&X-Amz-Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20261207%2Fus-east-1%2Fs3%2Faws4_request" +
			"&X-Amz-Date=20261207T120000Z&X-Amz-Expires=604801&X-Amz-SignedHeaders=host%3Bx-amz-meta-a" +
			"&X-Amz-Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Algorithm=AWS4-HMAC-SHA256",
		"X-Amz-Expires=0",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return
		}
		a, err := parsePresign(q, DefaultMaxPresignExpiry)
		if err != nil {
			wantS3Error(t, err)
			return
		}
		if !a.presigned || a.expires < time.Second || a.expires > DefaultMaxPresignExpiry ||
			len(a.signature) != 32 || !strings.Contains(";"+a.signedHeaders+";", ";host;") {
			t.Fatalf("accepted %q as %+v", rawQuery, a)
		}
	})
}

// fuzzSigner is the chain the chunk decoder fuzz target checks signatures
// with; its seeds are signed by the tests' own encoder with the same inputs.
func fuzzSigner() *chainSigner {
	seed, _ := hex.DecodeString(docSeed)
	return &chainSigner{key: signingKey(testSecret, "20261207", testRegion), amzDate: testTime.Format(amzDateLayout),
		scope: "20261207/" + testRegion + "/s3/aws4_request", prev: seed}
}

func FuzzChunkReader(f *testing.F) {
	amzDate := testTime.Format(amzDateLayout)
	trailer := []string{crc32Trailer(streamData)}
	for _, signed := range []bool{false, true} {
		for _, trailers := range [][]string{nil, trailer} {
			var signer *chunkSigner
			if signed {
				signer = newChunkSigner(testSecret, amzDate, testRegion, docSeed)
			}
			body := encodeChunks(streamData, 64, signer, trailers)
			f.Add(body, signed, trailers != nil, uint16(len(streamData)), false)
			f.Add(body, signed, trailers != nil, uint16(0), true)
		}
	}
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"), false, false, uint16(5), false)
	f.Add([]byte("ffffffffffffffff\r\n"), false, false, uint16(5), true)
	f.Add([]byte("0;chunk-signature=zz\r\n"), true, false, uint16(0), false)
	f.Fuzz(func(t *testing.T, data []byte, signed, trailers bool, declared uint16, unknown bool) {
		var signer *chainSigner
		if signed {
			signer = fuzzSigner()
		}
		var names []string
		if trailers {
			names = []string{"x-amz-checksum-crc32"}
		}
		length := int64(declared)
		if unknown {
			length = -1
		}
		c := newChunkReader(bytes.NewReader(data), length, signer, trailers, names)
		buf := make([]byte, 37)
		var total int64
		for reads := 0; ; reads++ {
			if reads > len(data)+1 {
				t.Fatalf("%d reads of %d bytes without an end", reads, len(data))
			}
			n, err := c.Read(buf)
			total += int64(n)
			if total > int64(len(data)) || (length >= 0 && total > length) {
				t.Fatalf("yielded %d bytes of %d, declared %d", total, len(data), length)
			}
			if errors.Is(err, io.EOF) {
				if length >= 0 && total != length {
					t.Fatalf("io.EOF after %d bytes, declared %d", total, length)
				}
				if trailers && len(c.values) != 1 {
					t.Fatalf("io.EOF with trailers %v", c.values)
				}
				break
			}
			if err != nil {
				wantS3Error(t, err)
				if _, err2 := c.Read(buf); err2 != err {
					t.Fatalf("error %v, then %v", err, err2)
				}
				break
			}
		}
	})
}

func FuzzReadTrailer(f *testing.F) {
	f.Add([]byte("x-amz-checksum-crc32:DUoRhQ==\r\n\r\n"), false)
	f.Add([]byte("x-amz-checksum-crc32:DUoRhQ==\r\nx-amz-trailer-signature:"+strings.Repeat("ab", 32)+"\r\n\r\n"), true)
	f.Add([]byte("X-Amz-Checksum-CRC32 :  DUoRhQ==\r\n"), false)
	f.Add([]byte("x-amz-checksum-crc32:a\r\nx-amz-checksum-crc32:b\r\n\r\n"), false)
	f.Add([]byte("\r\n"), true)
	f.Add([]byte(strings.Repeat("a", maxChunkLine+1)), false)
	f.Fuzz(func(t *testing.T, data []byte, signed bool) {
		declared := []string{"x-amz-checksum-crc32"}
		tr, err := readTrailer(bufio.NewReaderSize(bytes.NewReader(data), maxChunkLine), declared, signed)
		if err != nil {
			wantS3Error(t, err)
			return
		}
		if _, ok := tr.values[declared[0]]; !ok || len(tr.values) != 1 {
			t.Fatalf("accepted %q with values %v", data, tr.values)
		}
		if signed != (len(tr.signature) == 32) {
			t.Fatalf("accepted %q with signature %x (signed %v)", data, tr.signature, signed)
		}
		trailerCanonical(declared, tr.values)
	})
}
