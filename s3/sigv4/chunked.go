package sigv4

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/loftstore/loft/s3/s3err"
)

// Limits on what a client can make the decoder hold. Chunk data is never
// buffered beyond the bufio window, so a chunk's size is bounded only by
// what remains of x-amz-decoded-content-length, if given: the AWS SDK sends
// a body of known length as one chunk of that length.
const (
	maxChunkLine    = 4096 // a chunk header or trailer line with its CRLF
	maxTrailerLines = 16
	trailerSigName  = "x-amz-trailer-signature"
)

// chunkReader decodes an aws-chunked body:
//
//	hex-size[;chunk-signature=hex]\r\n data \r\n ... 0[;chunk-signature=hex]\r\n [trailers] \r\n
//
// and yields the data. It never yields more than the decoded length it was
// given (-1: unknown). With a signer it checks each chunk's signature when
// the chunk ends, and the trailer's after the final chunk. From the first
// error on, Read returns that error; it returns io.EOF only once all of the
// body was read and checked.
type chunkReader struct {
	br       *bufio.Reader
	signer   *chainSigner // nil: chunks carry no signatures
	trailers bool         // a trailer section follows the final chunk
	declared []string     // trailer names from X-Amz-Trailer, sorted
	left     int64        // decoded bytes still to come; -1: unknown

	inChunk   bool
	chunkLeft int64
	want      []byte    // the signature the current chunk declared
	sum       hash.Hash // running SHA-256 of the current chunk, when signed

	values map[string]string // the trailers, once the body was read
	err    error
}

func newChunkReader(r io.Reader, decoded int64, signer *chainSigner, trailers bool, declared []string) *chunkReader {
	c := &chunkReader{
		br:       bufio.NewReaderSize(r, maxChunkLine),
		signer:   signer,
		trailers: trailers,
		declared: declared,
		left:     decoded,
	}
	if signer != nil {
		c.sum = sha256.New()
	}
	return c
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for c.err == nil {
		switch {
		case !c.inChunk:
			c.err = c.startChunk()
		case c.chunkLeft == 0:
			c.err = c.endChunk()
		case len(p) == 0:
			return 0, nil
		default:
			if int64(len(p)) > c.chunkLeft {
				p = p[:c.chunkLeft]
			}
			n, err := c.br.Read(p)
			c.chunkLeft -= int64(n)
			if c.sum != nil {
				c.sum.Write(p[:n])
			}
			if err != nil {
				c.err = readError(err, "chunk data")
			}
			if n > 0 || c.err == nil {
				return n, nil
			}
		}
	}
	return 0, c.err
}

// startChunk reads a chunk header; after the final chunk's, it reads the
// rest of the body and returns io.EOF if all of it checks out.
func (c *chunkReader) startChunk() error {
	line, err := readLine(c.br, "chunk header", s3err.InvalidRequest)
	if err != nil {
		return err
	}
	size, sig, err := parseChunkHeader(line, c.signer != nil)
	if err != nil {
		return err
	}
	if c.left >= 0 && size > c.left {
		return s3err.New(s3err.InvalidRequest, "The chunks hold more than x-amz-decoded-content-length bytes.")
	}
	c.want = sig
	if size == 0 {
		return c.finish()
	}
	c.inChunk, c.chunkLeft = true, size
	if c.left >= 0 {
		c.left -= size
	}
	if c.sum != nil {
		c.sum.Reset()
	}
	return nil
}

// endChunk reads the CRLF after a chunk's data and checks its signature.
func (c *chunkReader) endChunk() error {
	var crlf [2]byte
	if _, err := io.ReadFull(c.br, crlf[:]); err != nil {
		return readError(err, "chunk end")
	}
	if string(crlf[:]) != "\r\n" {
		return s3err.New(s3err.InvalidRequest, "A chunk's data does not end where its size says.")
	}
	c.inChunk = false
	if c.signer != nil {
		return c.checkChunk(c.sum.Sum(nil))
	}
	return nil
}

func (c *chunkReader) checkChunk(sum []byte) error {
	if !hmac.Equal(c.signer.chunk(sum), c.want) {
		return s3err.New(s3err.SignatureDoesNotMatch,
			"The chunk signature we calculated does not match the chunk-signature you provided.")
	}
	return nil
}

// finish checks the final (empty) chunk and reads what follows it.
func (c *chunkReader) finish() error {
	if c.signer != nil {
		empty := sha256.Sum256(nil)
		if err := c.checkChunk(empty[:]); err != nil {
			return err
		}
	}
	if c.left > 0 {
		return s3err.New(s3err.IncompleteBody,
			"The chunks ended %d bytes short of x-amz-decoded-content-length.", c.left)
	}
	if c.trailers {
		t, err := readTrailer(c.br, c.declared, c.signer != nil)
		if err != nil {
			return err
		}
		if c.signer != nil && !hmac.Equal(c.signer.trailer(trailerCanonical(c.declared, t.values)), t.signature) {
			return s3err.New(s3err.SignatureDoesNotMatch,
				"The trailer signature we calculated does not match the x-amz-trailer-signature you provided.")
		}
		c.values = t.values
		// Another empty line may follow (minio-go's "\r\n\r\n").
		if rest, _ := c.br.Peek(2); string(rest) == "\r\n" {
			c.br.Discard(2)
		}
	} else if err := readFinalLine(c.br); err != nil {
		return err
	}
	switch _, err := c.br.ReadByte(); {
	case err == nil:
		return s3err.New(s3err.InvalidRequest, "The body goes on after its final chunk.")
	case !errors.Is(err, io.EOF):
		return readError(err, "after the final chunk")
	}
	return io.EOF
}

// trailer returns the value of a declared trailer once Read returned io.EOF.
func (c *chunkReader) trailer(name string) (string, bool) {
	v, ok := c.values[name]
	return v, ok
}

// parseChunkHeader parses "hex-size" or, when signed,
// "hex-size;chunk-signature=<64 hex digits>".
func parseChunkHeader(line []byte, signed bool) (int64, []byte, error) {
	sizePart, ext, hasExt := bytes.Cut(line, []byte(";"))
	if len(sizePart) == 0 || len(sizePart) > 16 || !isHex(sizePart) {
		return 0, nil, s3err.New(s3err.InvalidRequest, "A chunk header has an invalid size %q.", truncate(sizePart))
	}
	size, err := strconv.ParseInt(string(sizePart), 16, 64)
	if err != nil {
		return 0, nil, s3err.Wrap(s3err.InvalidRequest, err, "A chunk header has an invalid size.")
	}
	if !signed {
		if hasExt {
			return 0, nil, s3err.New(s3err.InvalidRequest, "An unsigned chunk header carries an extension.")
		}
		return size, nil, nil
	}
	v, ok := bytes.CutPrefix(ext, []byte("chunk-signature="))
	if !hasExt || !ok {
		return 0, nil, s3err.New(s3err.InvalidRequest, "A chunk header lacks its chunk-signature.")
	}
	sig := make([]byte, 32)
	if len(v) != 64 || !isHex(v) {
		return 0, nil, s3err.New(s3err.InvalidRequest, "A chunk-signature must be 64 hexadecimal digits.")
	}
	if _, err := hex.Decode(sig, v); err != nil {
		return 0, nil, s3err.Wrap(s3err.InvalidRequest, err, "A chunk-signature must be 64 hexadecimal digits.")
	}
	return size, sig, nil
}

// trailerSet is a parsed trailer section.
type trailerSet struct {
	values    map[string]string // declared name -> value
	signature []byte            // x-amz-trailer-signature, when signed
}

// readTrailer reads the trailer section after the final chunk: a
// "name:value\r\n" line for each declared trailer, then, when signed,
// "x-amz-trailer-signature:<hex>\r\n", then an empty line. The empty line
// may be missing at the end of the body. Names are matched without regard
// to case; values lose surrounding blanks.
func readTrailer(br *bufio.Reader, declared []string, signed bool) (trailerSet, error) {
	t := trailerSet{values: make(map[string]string)}
	for lines := 0; ; lines++ {
		if _, err := br.Peek(1); errors.Is(err, io.EOF) {
			break
		}
		// minio-go ends a trailer line with a bare LF (and the section with
		// two CRLFs), as MinIO's server accepts: so does this.
		line, err := readLineLF(br, "trailer", s3err.MalformedTrailer)
		if err != nil {
			return trailerSet{}, err
		}
		if len(line) == 0 {
			if signed && t.signature == nil && len(t.values) > 0 {
				// minio-go puts an empty line between the checksum and
				// the trailer's signature: the section goes on.
				continue
			}
			break
		}
		if lines == maxTrailerLines {
			return trailerSet{}, malformedTrailer("too many trailer lines")
		}
		rawName, rawValue, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return trailerSet{}, malformedTrailer("a trailer line has no colon")
		}
		name := strings.ToLower(string(bytes.TrimSpace(rawName)))
		value := string(bytes.Trim(rawValue, " \t"))
		switch {
		case name == trailerSigName && signed && t.signature == nil:
			sig, err := hex.DecodeString(value)
			if err != nil || len(sig) != 32 {
				return trailerSet{}, malformedTrailer("x-amz-trailer-signature must be 64 hexadecimal digits")
			}
			t.signature = sig
		case !slices.Contains(declared, name):
			return trailerSet{}, malformedTrailer("the trailer %q is not declared in x-amz-trailer or is repeated", truncate([]byte(name)))
		case hasKey(t.values, name):
			return trailerSet{}, malformedTrailer("the trailer %q is repeated", name)
		default:
			t.values[name] = value
		}
	}
	for _, name := range declared {
		if !hasKey(t.values, name) {
			return trailerSet{}, malformedTrailer("the declared trailer %q is missing", name)
		}
	}
	if signed && t.signature == nil {
		return trailerSet{}, malformedTrailer("x-amz-trailer-signature is missing")
	}
	return t, nil
}

// trailerCanonical is what a trailer signature signs the SHA-256 of: a
// "name:value\n" line for each trailer, sorted by name. Checked against
// the AWS Common Runtime's known answer (aws-crt-swift ChunkSignerTests:
// trailers first:1st, second:2nd, third:3rd give df5735bd...); that answer
// cannot tell sorting from the order sent, and the two coincide whenever
// one trailer is sent, which is all Verify accepts.
func trailerCanonical(names []string, values map[string]string) []byte {
	var b bytes.Buffer
	for _, name := range names {
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(values[name])
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// readFinalLine reads the CRLF that ends a body without trailers; a body
// that ends right after the final chunk's header is accepted too.
func readFinalLine(br *bufio.Reader) error {
	if _, err := br.Peek(1); errors.Is(err, io.EOF) {
		return nil
	}
	line, err := readLine(br, "final chunk", s3err.InvalidRequest)
	if err != nil {
		return err
	}
	if len(line) != 0 {
		return s3err.New(s3err.InvalidRequest, "The final chunk carries data.")
	}
	return nil
}

// readLine reads a line ending in CRLF of at most maxChunkLine bytes and
// returns it without the CRLF, valid until the next read of br.
func readLine(br *bufio.Reader, what string, code s3err.Code) ([]byte, error) {
	return readLineEnd(br, what, code, false)
}

// readLineLF is readLine for lines that may end in a bare LF.
func readLineLF(br *bufio.Reader, what string, code s3err.Code) ([]byte, error) {
	return readLineEnd(br, what, code, true)
}

func readLineEnd(br *bufio.Reader, what string, code s3err.Code, bareLF bool) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, s3err.New(code, "A %s line is longer than %d bytes.", what, maxChunkLine)
	case err != nil:
		return nil, readError(err, what)
	case !bareLF && !bytes.HasSuffix(line, []byte("\r\n")):
		return nil, s3err.New(code, "A %s line does not end in CRLF.", what)
	}
	line = line[:len(line)-1]
	return bytes.TrimSuffix(line, []byte("\r")), nil
}

// sortedTrailerNames returns the names of an X-Amz-Trailer header's values,
// lower-cased and sorted.
func sortedTrailerNames(values []string) []string {
	var names []string
	for _, v := range values {
		for _, name := range strings.Split(v, ",") {
			if name = strings.ToLower(strings.TrimSpace(name)); name != "" {
				names = append(names, name)
			}
		}
	}
	sort.Strings(names)
	return names
}

func malformedTrailer(format string, args ...any) error {
	return s3err.New(s3err.MalformedTrailer,
		"The request contained trailing data that was not well-formed: "+format, args...)
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func hasKey(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}

// truncate keeps client bytes quoted in messages short.
func truncate(b []byte) string {
	if len(b) > 32 {
		return string(b[:32]) + "..."
	}
	return string(b)
}
