package sigv4

import (
	"context"
	"encoding/hex"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/loftstore/loft/s3/s3err"
)

// resign signs, with the AWS SDK's signer, a request that carries what the
// client signed of r, and returns the signature.
//
// The SDK signer (aws-sdk-go-v2 v1.48.0, aws/signer/v4) decides on its own
// which headers it signs; the request built here steers it so it signs
// exactly the client's list:
//   - It skips Authorization, User-Agent, X-Amzn-Trace-Id, Expect and
//     Transfer-Encoding, but matches those names only in their canonical
//     spelling as map keys. Every signed header is therefore put into the
//     header map under its lower-case name, so it is signed like any other.
//   - It signs "content-length" from Request.ContentLength when that is
//     above 0, never from the header map. A signed content-length is given
//     as ContentLength; a signed "content-length: 0" cannot be reproduced.
//   - It sets X-Amz-Date itself (header mode) to the signing time, and
//     X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date and X-Amz-SignedHeaders
//     (presign mode) from its arguments. The client's values were parsed
//     strictly, so the SDK's equal them; x-amz-date is left out of the
//     header map lest it be signed twice.
//   - It signs the host of Request.Host, dropping a default port when the
//     URL's scheme says which is default; the URL here has no scheme, so
//     the Host the client sent is signed as sent.
//   - It takes the path from URL.Opaque when set ("//host/path"), else from
//     URL.EscapedPath, which may differ from what the client sent. The raw
//     path of the request line goes into Opaque.
//   - In presign mode it moves X-Amz-* headers into the query unless
//     DisableHeaderHoisting is set; it is set.
//   - It adds X-Amz-Security-Token when the credentials carry a session
//     token; these carry none, and a client's token is an ordinary header
//     or query parameter.
//   - It signs the query as url.Values parses it, silently dropping pairs
//     that do not parse; such a query is refused before it gets here.
//
// Where the SDK still signs a different list than the client's (an
// unsorted list, content-length 0, a request without x-amz-date), resign
// returns SignatureDoesNotMatch naming the header rather than guess.
func resign(ctx context.Context, r *http.Request, a *auth, secret, payloadHash string) ([]byte, error) {
	fresh, err := signable(r, a)
	if err != nil {
		return nil, err
	}
	fresh = fresh.WithContext(ctx)
	signer := v4.NewSigner(func(o *v4.SignerOptions) {
		o.DisableURIPathEscaping = true
		o.DisableHeaderHoisting = true
	})
	creds := aws.Credentials{AccessKeyID: a.accessKey, SecretAccessKey: secret}
	t, err := parseAmzDate(a.amzDate)
	if err != nil {
		return nil, s3err.Wrap(s3err.InternalError, err, "re-parse X-Amz-Date")
	}

	var signedHeaders, signature string
	if a.presigned {
		uri, _, err := signer.PresignHTTP(ctx, creds, fresh, payloadHash, service, a.region, t)
		if err != nil {
			return nil, s3err.Wrap(s3err.InternalError, err, "presign")
		}
		_, rawQuery, _ := strings.Cut(uri, "?")
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return nil, s3err.Wrap(s3err.InternalError, err, "parse the presigned query")
		}
		signedHeaders, signature = q.Get(querySignedHeaders), q.Get(querySignature)
	} else {
		if err := signer.SignHTTP(ctx, creds, fresh, payloadHash, service, a.region, t); err != nil {
			return nil, s3err.Wrap(s3err.InternalError, err, "sign")
		}
		got, err := parseAuthorization(fresh.Header.Get("Authorization"))
		if err != nil {
			return nil, s3err.Wrap(s3err.InternalError, err, "parse the signer's Authorization")
		}
		signedHeaders, signature = got.signedHeaders, hex.EncodeToString(got.signature)
	}
	if signedHeaders != a.signedHeaders {
		return nil, s3err.New(s3err.SignatureDoesNotMatch,
			"SignedHeaders %q cannot be verified: %s", a.signedHeaders, headerListDiff(a.signedHeaders, signedHeaders))
	}
	sig, err := hex.DecodeString(signature)
	if err != nil {
		return nil, s3err.Wrap(s3err.InternalError, err, "decode the signer's signature")
	}
	return sig, nil
}

// signable builds the request the SDK signs: r's method, host, raw path and
// query (without X-Amz-Signature when presigned) and exactly the headers
// the client signed, with the values received.
func signable(r *http.Request, a *auth) (*http.Request, error) {
	rawQuery := r.URL.RawQuery
	if a.presigned {
		q, _ := url.ParseQuery(rawQuery) // authenticate checked it parses
		q.Del(querySignature)
		rawQuery = q.Encode()
	}
	fresh := &http.Request{
		Method: r.Method,
		Host:   r.Host,
		Header: make(http.Header),
		URL:    &url.URL{Opaque: "//" + "signed" + requestPath(r), RawQuery: rawQuery},
	}
	for _, name := range strings.Split(a.signedHeaders, ";") {
		switch {
		case name == "host":
			continue // signed from fresh.Host
		case name == "x-amz-date" && !a.presigned:
			if len(r.Header.Values("X-Amz-Date")) == 0 {
				return nil, notResignable(name, "it is signed but the request lacks it")
			}
			continue // set by the signer from the signing time
		case name == "content-length":
			v := r.Header.Get("Content-Length")
			if v == "" && r.ContentLength > 0 {
				v = strconv.FormatInt(r.ContentLength, 10) // a request not read from the wire
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 || strconv.FormatInt(n, 10) != v {
				return nil, notResignable(name, "its value is not a decimal length")
			}
			if n == 0 {
				return nil, notResignable(name, "the signer never signs a length of 0")
			}
			fresh.ContentLength = n
			continue
		}
		values := r.Header[textproto.CanonicalMIMEHeaderKey(name)]
		if name == "transfer-encoding" && len(values) == 0 && len(r.TransferEncoding) > 0 {
			values = []string{strings.Join(r.TransferEncoding, ",")} // net/http moved it out of Header
		}
		if len(values) == 0 {
			return nil, notResignable(name, "it is signed but the request lacks it")
		}
		fresh.Header[name] = values
	}
	if !a.presigned && !strings.Contains(";"+a.signedHeaders+";", ";x-amz-date;") {
		return nil, notResignable("x-amz-date", "the signer always signs it, so it must be signed")
	}
	return fresh, nil
}

// requestPath is the path as the client sent it: that of the request line
// when the request came from a server, else r.URL's escaped path.
func requestPath(r *http.Request) string {
	if strings.HasPrefix(r.RequestURI, "/") {
		path, _, _ := strings.Cut(r.RequestURI, "?")
		return path
	}
	return r.URL.EscapedPath()
}

func notResignable(header, why string) error {
	return s3err.New(s3err.SignatureDoesNotMatch, "signed header %q cannot be verified: %s", header, why)
}

// headerListDiff names the first difference between the client's list of
// signed headers and the signer's.
func headerListDiff(client, signer string) string {
	in := func(list, name string) bool { return strings.Contains(";"+list+";", ";"+name+";") }
	for _, name := range strings.Split(client, ";") {
		if !in(signer, name) {
			return "the signer does not sign " + strconv.Quote(name)
		}
	}
	for _, name := range strings.Split(signer, ";") {
		if !in(client, name) {
			return "the signer also signs " + strconv.Quote(name)
		}
	}
	return "the list must be sorted, without repeats, as the signer writes it: " + strconv.Quote(signer)
}
