package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// emptySHA256 is the hex SHA-256 of no bytes: the "headers" line of a chunk
// string to sign, as chunks of an S3 upload carry no headers.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// The SDK's v4.StreamSigner.GetSignature computes the same chunk signature
// when given empty headers (the tests check that), but it takes the whole
// chunk as one slice; these take the chunk's SHA-256, so a chunk streams
// through without being buffered.

// signingKey derives the SigV4 signing key of a credential scope.
func signingKey(secret, date, region string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, terminator)
}

// chainSigner computes the signatures of an aws-chunked body, each chained
// from the one before, starting from the request's own (seed) signature.
type chainSigner struct {
	key     []byte
	amzDate string
	scope   string
	prev    []byte
}

// chunk returns the signature of a chunk whose data has SHA-256 sum and
// makes it the previous signature.
func (s *chainSigner) chunk(sum []byte) []byte {
	sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + s.amzDate + "\n" + s.scope + "\n" +
		hex.EncodeToString(s.prev) + "\n" + emptySHA256 + "\n" + hex.EncodeToString(sum)
	s.prev = hmacSHA256(s.key, sts)
	return s.prev
}

// trailer returns the signature of the trailer whose canonical form
// (trailerCanonical) is canonical.
func (s *chainSigner) trailer(canonical []byte) []byte {
	sum := sha256.Sum256(canonical)
	sts := "AWS4-HMAC-SHA256-TRAILER\n" + s.amzDate + "\n" + s.scope + "\n" +
		hex.EncodeToString(s.prev) + "\n" + hex.EncodeToString(sum[:])
	s.prev = hmacSHA256(s.key, sts)
	return s.prev
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
