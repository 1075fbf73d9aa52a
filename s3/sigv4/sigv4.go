// Package sigv4 authenticates S3 requests signed with AWS Signature
// Version 4 and turns the request body into a stream that verifies, as it
// is read, everything the client declared about it: the payload hash, the
// chunk and trailer signatures of aws-chunked bodies, Content-MD5 and the
// x-amz-checksum-* values.
//
// The canonical request is never built here. Verify rebuilds a request
// carrying exactly what the client signed, lets the AWS SDK for Go v2
// signer sign it with the secret of the access key, and compares the
// signatures in constant time. What the SDK has no public API for is
// written here: the aws-chunked framing, the chunk and trailer signatures
// and the checksums.
//
// Every error Verify or a Body returns for the client is an *s3err.Error;
// read errors of the underlying body (a dropped connection, a
// *http.MaxBytesError) pass through unchanged, except that a body cut
// short becomes IncompleteBody.
//
// Choices where S3's behaviour had to be picked:
//   - A header-signed request without x-amz-content-sha256 is refused with
//     InvalidRequest ("Missing required header for this request:
//     x-amz-content-sha256"), as S3 does.
//   - SignedHeaders without host is AuthorizationHeaderMalformed (header)
//     or AuthorizationQueryParametersError (presigned URL).
//   - The request time is X-Amz-Date, or the Date header when X-Amz-Date is
//     absent; but the SDK signer always signs x-amz-date, so a request that
//     did not sign it fails with SignatureDoesNotMatch naming x-amz-date.
//   - Signature Version 2 (an "AWS AK:sig" Authorization header or an
//     AWSAccessKeyId query parameter) is refused with InvalidRequest.
//   - A presigned URL whose X-Amz-Date lies more than MaxSkew in the future
//     is refused with AccessDenied "Request is not valid yet"; one past
//     X-Amz-Date+X-Amz-Expires with AccessDenied "Request has expired".
//   - Every x-amz-* header of a signed request must be signed; otherwise
//     AccessDenied "There were headers present in the request which were
//     not signed", so the holder of a presigned URL cannot add, say,
//     x-amz-copy-source.
//   - At most one x-amz-checksum-* value (header or trailer) per request,
//     as S3 requires. CRC32, CRC32C, CRC64NVME, SHA1, SHA256, SHA512 and
//     MD5 are verified; other algorithms (the xxHash family) are refused
//     with InvalidRequest rather than passed unchecked.
//   - x-amz-content-sha256 alone decides the framing; Content-Encoding:
//     aws-chunked is not required. x-amz-decoded-content-length is
//     optional, as the AWS SDK omits it for streams of unknown length.
//   - A trailer payload needs X-Amz-Trailer naming one x-amz-checksum-*
//     trailer; other trailers are MalformedTrailer.
//
// A browser POST upload carries no Authorization header and is therefore
// anonymous here; its policy signature is the gateway's business.
package sigv4

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/loftstore/loft/s3/s3err"
)

// Keys finds the secret of an access key. An unknown key returns an error
// wrapping ErrUnknownKey; any other error is the store's own failure.
type Keys interface {
	Secret(ctx context.Context, accessKey string) (string, error)
}

// ErrUnknownKey is wrapped by Keys.Secret for an access key it does not know.
var ErrUnknownKey = errors.New("unknown access key")

// Defaults for the zero values of Verifier's fields.
const (
	DefaultMaxSkew          = 15 * time.Minute
	DefaultMaxPresignExpiry = 7 * 24 * time.Hour // S3's maximum
)

// Verifier authenticates requests. Its zero value, given Keys, is ready;
// it is safe for concurrent use as long as its fields are not changed.
type Verifier struct {
	Keys             Keys
	Now              func() time.Time // nil: time.Now
	MaxSkew          time.Duration    // 0: DefaultMaxSkew
	MaxPresignExpiry time.Duration    // 0: DefaultMaxPresignExpiry
}

// Request is what Verify made of a request.
type Request struct {
	// AccessKey is "" for an anonymous request: one with no Authorization
	// header and no X-Amz-Algorithm, X-Amz-Credential or X-Amz-Signature
	// query parameter.
	AccessKey string
	// Region is the region of the credential scope ("" when anonymous).
	Region string

	// Body replaces r.Body: the decoded content, with any aws-chunked
	// framing removed, verified as it is read. Closing it closes r.Body.
	//
	// Contract: data is handed out as it arrives, before the check that
	// covers it is complete; a chunk's bytes come out before its signature
	// has been checked. Every check is complete at the latest when the
	// read that would return io.EOF happens: that read returns the
	// *s3err.Error instead (XAmzContentSHA256Mismatch, SignatureDoesNotMatch,
	// BadDigest, IncompleteBody, InvalidRequest, MalformedTrailer, ...), and
	// so does every read after it. A caller must therefore commit what it
	// read only after it saw io.EOF.
	Body io.ReadCloser
	// Length is the decoded content length when known: Content-Length of a
	// plain body, x-amz-decoded-content-length of an aws-chunked one; -1
	// otherwise (the AWS SDK sends aws-chunked bodies of unknown length
	// without x-amz-decoded-content-length).
	Length int64

	// Checksums maps the algorithm ("CRC32", "CRC32C", "CRC64NVME", "SHA1",
	// "SHA256", "SHA512" or "MD5", as S3's ChecksumAlgorithm spells it) of
	// the x-amz-checksum-* value the client declared, in a header or a
	// trailer, to that base64 value. It is set once Body returned io.EOF,
	// that is, once the body matched it; it is then empty when the client
	// declared none.
	Checksums map[string]string
	// MD5 is the base64 Content-MD5 the client sent, set once Body returned
	// io.EOF; "" when none was sent.
	MD5 string
}

// Verify authenticates r and returns the verified body in Request.Body. It
// reads no body bytes itself. An anonymous request is not refused: it
// returns a Request whose AccessKey is "", and its body is still checked
// against the Content-MD5, x-amz-checksum-* and x-amz-content-sha256 it
// declares.
func (v *Verifier) Verify(ctx context.Context, r *http.Request) (*Request, error) {
	s, err := v.authenticate(ctx, r)
	if err != nil {
		return nil, err
	}
	req := &Request{}
	if s != nil {
		req.AccessKey = s.auth.accessKey
		req.Region = s.auth.region
	}
	if err := newBody(r, s, req); err != nil {
		return nil, err
	}
	return req, nil
}

// StripAWSChunked returns a Content-Encoding value without its aws-chunked
// coding, which only marks the framing Verify removes: "aws-chunked,gzip"
// becomes "gzip" and "aws-chunked" becomes "".
func StripAWSChunked(contentEncoding string) string {
	var kept []string
	for _, c := range strings.Split(contentEncoding, ",") {
		c = strings.TrimSpace(c)
		if c == "" || strings.EqualFold(c, "aws-chunked") {
			continue
		}
		kept = append(kept, c)
	}
	return strings.Join(kept, ",")
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) maxSkew() time.Duration {
	if v.MaxSkew > 0 {
		return v.MaxSkew
	}
	return DefaultMaxSkew
}

func (v *Verifier) maxPresignExpiry() time.Duration {
	if v.MaxPresignExpiry > 0 {
		return v.MaxPresignExpiry
	}
	return DefaultMaxPresignExpiry
}

// secret looks the access key up, turning the answer into S3's codes.
func (v *Verifier) secret(ctx context.Context, accessKey string) (string, error) {
	if v.Keys == nil {
		return "", s3err.New(s3err.InternalError, "no key store configured")
	}
	secret, err := v.Keys.Secret(ctx, accessKey)
	switch {
	case errors.Is(err, ErrUnknownKey):
		return "", s3err.Wrap(s3err.InvalidAccessKeyID, err,
			"The AWS Access Key Id you provided does not exist in our records.")
	case err != nil:
		return "", s3err.Wrap(s3err.InternalError, err, "look up access key")
	}
	return secret, nil
}

// readError turns a read error of the request body into what Body returns:
// a body that ended early is IncompleteBody, anything else passes through.
// IncompleteBody does not wrap io.EOF, lest errors.Is take it for the end.
func readError(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return s3err.New(s3err.IncompleteBody,
			"The body ended early, in the %s: you did not provide the number of bytes the request declared.", what)
	}
	return fmt.Errorf("read body: %w", err)
}
