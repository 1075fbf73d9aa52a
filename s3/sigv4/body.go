package sigv4

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net/http"
	"strings"

	"github.com/loftstore/loft/s3/s3err"
)

// The values of x-amz-content-sha256 besides a hex SHA-256.
const (
	unsignedPayload          = "UNSIGNED-PAYLOAD"
	streamingSigned          = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingSignedTrailer   = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

// crc64NVME is the NVMe CRC-64 polynomial in the bit-reversed form
// hash/crc64 takes, as the AWS SDK's checksum package has it.
const crc64NVME = 0x9a6c9329ac4bc9b5

// checksumAlgorithm is an algorithm of x-amz-checksum-*.
type checksumAlgorithm struct {
	name string // as S3's ChecksumAlgorithm spells it
	size int
	new  func() hash.Hash
}

// checksumAlgorithmOf returns the algorithm of an x-amz-checksum-* header
// by its suffix. S3 also knows the xxHash family, which the standard
// library lacks; those are refused rather than passed unchecked.
func checksumAlgorithmOf(suffix string) (checksumAlgorithm, bool) {
	switch suffix {
	case "crc32":
		return checksumAlgorithm{"CRC32", crc32.Size, func() hash.Hash { return crc32.NewIEEE() }}, true
	case "crc32c":
		return checksumAlgorithm{"CRC32C", crc32.Size, func() hash.Hash { return crc32.New(crc32.MakeTable(crc32.Castagnoli)) }}, true
	case "crc64nvme":
		return checksumAlgorithm{"CRC64NVME", crc64.Size, func() hash.Hash { return crc64.New(crc64.MakeTable(crc64NVME)) }}, true
	case "sha1":
		return checksumAlgorithm{"SHA1", sha1.Size, sha1.New}, true
	case "sha256":
		return checksumAlgorithm{"SHA256", sha256.Size, sha256.New}, true
	case "sha512":
		return checksumAlgorithm{"SHA512", sha512.Size, sha512.New}, true
	case "md5":
		return checksumAlgorithm{"MD5", md5.Size, md5.New}, true
	}
	return checksumAlgorithm{}, false
}

// NewChecksum returns a hash of the checksum algorithm S3 spells alg
// ("CRC32C"), and its size in bytes; false for one loft does not know.
func NewChecksum(alg string) (hash.Hash, int, bool) {
	a, ok := checksumAlgorithmOf(strings.ToLower(alg))
	if !ok || a.name != alg {
		return nil, 0, false
	}
	return a.new(), a.size, true
}

// isChecksumValue reports whether an x-amz-checksum-* header carries a
// checksum; x-amz-checksum-type, -mode and -algorithm do not.
func isChecksumValue(suffix string) bool {
	return suffix != "type" && suffix != "mode" && suffix != "algorithm"
}

const checksumPrefix = "x-amz-checksum-"

// expectation is a digest of the body and the value it must have.
type expectation struct {
	h    hash.Hash
	want []byte
}

func (e *expectation) ok() bool { return bytes.Equal(e.h.Sum(nil), e.want) }

// checksum is the x-amz-checksum-* value a request declared.
type checksum struct {
	header  string // x-amz-checksum-crc32, ...
	alg     checksumAlgorithm
	trailer bool // the value comes in the trailer
	exp     expectation
}

// payload is how x-amz-content-sha256 says the body is sent.
type payload struct {
	digest   []byte // the body's SHA-256, when signed as such
	chunked  bool   // aws-chunked framing
	signed   bool   // the chunks carry signatures
	trailers bool   // a trailer follows the chunks
}

func parsePayload(v string) (payload, error) {
	switch v {
	case unsignedPayload:
		return payload{}, nil
	case streamingSigned:
		return payload{chunked: true, signed: true}, nil
	case streamingSignedTrailer:
		return payload{chunked: true, signed: true, trailers: true}, nil
	case streamingUnsignedTrailer:
		return payload{chunked: true, trailers: true}, nil
	}
	digest, err := hex.DecodeString(v)
	if err != nil || len(digest) != sha256.Size {
		return payload{}, s3err.New(s3err.InvalidArgument,
			"x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "+
				"STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER "+
				"or a valid sha256 value.")
	}
	return payload{digest: digest}, nil
}

// newBody sets req's Body and Length: r's body, decoded and checked as
// declared by r's headers and, when signed, by s. An anonymous request's
// x-amz-content-sha256 is honoured too, but cannot ask for signed chunks.
func newBody(r *http.Request, s *signing, req *Request) error {
	mode := unsignedPayload
	if s != nil {
		mode = s.payloadHash
	} else if vs := r.Header.Values("X-Amz-Content-Sha256"); len(vs) > 0 {
		mode = vs[0]
	}
	p, err := parsePayload(mode)
	if err != nil {
		return err
	}
	if p.signed && s == nil {
		return s3err.New(s3err.InvalidRequest, "A %s payload needs a signed request.", mode)
	}
	vb := &verifyingBody{req: req}
	if p.digest != nil {
		vb.content = &expectation{h: sha256.New(), want: p.digest}
	}
	if err := vb.declared(r, p.trailers); err != nil {
		return err
	}

	body := r.Body
	if body == nil {
		body = http.NoBody
	}
	vb.closer = body
	req.Body = vb
	if !p.chunked {
		req.Length = max(r.ContentLength, -1)
		vb.src = &sizedReader{r: body, left: req.Length}
		return nil
	}

	if req.Length, err = decodedLength(r); err != nil {
		return err
	}
	var signer *chainSigner
	if p.signed {
		signer = &chainSigner{key: s.key, amzDate: s.auth.amzDate, scope: s.auth.scope(), prev: s.auth.signature}
	}
	var declared []string
	if vb.sum != nil && vb.sum.trailer {
		declared = []string{vb.sum.header}
	}
	vb.chunks = newChunkReader(body, req.Length, signer, p.trailers, declared)
	vb.src = vb.chunks
	return nil
}

// declared reads the Content-MD5, x-amz-checksum-* and x-amz-trailer
// headers into what the body must match.
func (vb *verifyingBody) declared(r *http.Request, trailers bool) error {
	if vs, ok := r.Header["Content-Md5"]; ok {
		want, err := base64.StdEncoding.DecodeString(strings.Join(vs, ","))
		if err != nil || len(want) != md5.Size || len(vs) != 1 {
			return s3err.New(s3err.InvalidDigest, "The Content-MD5 you specified was invalid.")
		}
		vb.md5 = &expectation{h: md5.New(), want: want}
		vb.md5Value = vs[0]
	}

	var sums []*checksum
	// A CompleteMultipartUpload (POST ?uploadId=) declares the object's
	// checksum in these headers, not its body's: the gateway checks it
	// against the parts the upload completes with.
	headers := r.Header
	if r.Method == http.MethodPost && r.URL.Query().Has("uploadId") {
		headers = nil
	}
	for name, vs := range headers {
		header := strings.ToLower(name)
		suffix, ok := strings.CutPrefix(header, checksumPrefix)
		if !ok || !isChecksumValue(suffix) {
			continue
		}
		alg, ok := checksumAlgorithmOf(suffix)
		if !ok {
			return s3err.New(s3err.InvalidRequest, "The checksum algorithm of %s is not supported.", header)
		}
		want, err := base64.StdEncoding.DecodeString(strings.Join(vs, ","))
		if err != nil || len(want) != alg.size || len(vs) != 1 {
			return s3err.New(s3err.InvalidRequest, "Value for %s header is invalid.", header)
		}
		sums = append(sums, &checksum{header: header, alg: alg, exp: expectation{h: alg.new(), want: want}})
	}

	names := sortedTrailerNames(r.Header.Values("X-Amz-Trailer"))
	switch {
	case len(names) > 0 && !trailers:
		return s3err.New(s3err.InvalidRequest,
			"x-amz-trailer needs x-amz-content-sha256 STREAMING-UNSIGNED-PAYLOAD-TRAILER or STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER.")
	case len(names) == 0 && trailers:
		return s3err.New(s3err.InvalidRequest, "A trailer payload needs an x-amz-trailer header naming its checksum.")
	}
	for _, header := range names {
		suffix, _ := strings.CutPrefix(header, checksumPrefix)
		alg, ok := checksumAlgorithmOf(suffix)
		if !strings.HasPrefix(header, checksumPrefix) || !ok {
			return s3err.New(s3err.InvalidRequest, "The trailer %q is not supported.", truncate([]byte(header)))
		}
		sums = append(sums, &checksum{header: header, alg: alg, trailer: true, exp: expectation{h: alg.new()}})
	}
	if len(sums) > 1 {
		return s3err.New(s3err.InvalidRequest,
			"Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
	}
	if len(sums) == 1 {
		vb.sum = sums[0]
	}
	return nil
}

// decodedLength reads x-amz-decoded-content-length: -1 when absent, as the
// AWS SDK leaves it out for a stream of unknown length.
func decodedLength(r *http.Request) (int64, error) {
	vs := r.Header.Values("X-Amz-Decoded-Content-Length")
	if len(vs) == 0 {
		return -1, nil
	}
	n, err := parseDecimal(vs[0])
	if err != nil || len(vs) != 1 {
		return 0, s3err.New(s3err.InvalidArgument, "x-amz-decoded-content-length is not a length.")
	}
	return n, nil
}

// verifyingBody is Request.Body: it hashes what src yields and, when src
// ends, checks the digests before it lets io.EOF through.
type verifyingBody struct {
	src      io.Reader
	closer   io.Closer
	chunks   *chunkReader // src when aws-chunked, for its trailer
	req      *Request
	content  *expectation // x-amz-content-sha256
	md5      *expectation // Content-MD5
	md5Value string
	sum      *checksum // x-amz-checksum-*
	err      error     // sticky: io.EOF once verified
}

func (b *verifyingBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.src.Read(p)
	for _, h := range b.hashes() {
		h.Write(p[:n])
	}
	switch {
	case err == io.EOF:
		b.err = b.finish()
	case err != nil:
		b.err = err
	}
	if n > 0 || b.err == nil {
		return n, nil
	}
	return 0, b.err
}

func (b *verifyingBody) Close() error { return b.closer.Close() }

func (b *verifyingBody) hashes() []hash.Hash {
	var hs []hash.Hash
	for _, e := range []*expectation{b.content, b.md5} {
		if e != nil {
			hs = append(hs, e.h)
		}
	}
	if b.sum != nil {
		hs = append(hs, b.sum.exp.h)
	}
	return hs
}

// finish checks the digests of the whole body; it returns io.EOF if they
// all match, and records what they verified in the Request.
func (b *verifyingBody) finish() error {
	if b.content != nil && !b.content.ok() {
		return s3err.New(s3err.XAmzContentSHA256Mismatch,
			"The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	if b.md5 != nil && !b.md5.ok() {
		return s3err.New(s3err.BadDigest, "The Content-MD5 you specified did not match what we received.")
	}
	checksums := make(map[string]string)
	if sum := b.sum; sum != nil {
		if sum.trailer {
			value, _ := b.chunks.trailer(sum.header)
			want, err := base64.StdEncoding.DecodeString(value)
			if err != nil || len(want) != sum.alg.size {
				return s3err.New(s3err.InvalidRequest, "Value for %s trailing header is invalid.", sum.header)
			}
			sum.exp.want = want
		}
		if !sum.exp.ok() {
			return s3err.New(s3err.BadDigest, "The %s you specified did not match the calculated checksum.", sum.alg.name)
		}
		checksums[sum.alg.name] = base64.StdEncoding.EncodeToString(sum.exp.want)
	}
	b.req.Checksums = checksums
	b.req.MD5 = b.md5Value
	return io.EOF
}

// sizedReader is a plain body of left bytes (-1: unknown) that reports a
// body ending early as IncompleteBody.
type sizedReader struct {
	r    io.Reader
	left int64
}

func (s *sizedReader) Read(p []byte) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	if s.left > 0 && int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, err := s.r.Read(p)
	if s.left > 0 {
		s.left -= int64(n)
	}
	switch {
	case err == io.EOF && s.left > 0:
		return n, readError(err, "body")
	case err != nil && err != io.EOF:
		return n, readError(err, "body")
	}
	return n, err
}
