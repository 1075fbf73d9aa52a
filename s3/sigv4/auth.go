package sigv4

import (
	"context"
	"crypto/hmac"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/loftstore/loft/s3/s3err"
)

const (
	algorithm     = "AWS4-HMAC-SHA256"
	amzDateLayout = "20060102T150405Z"
	scopeLayout   = "20060102"
	service       = "s3"
	terminator    = "aws4_request"
)

// The query parameters of a presigned URL.
const (
	queryAlgorithm     = "X-Amz-Algorithm"
	queryCredential    = "X-Amz-Credential"
	queryDate          = "X-Amz-Date"
	queryExpires       = "X-Amz-Expires"
	querySignedHeaders = "X-Amz-SignedHeaders"
	querySignature     = "X-Amz-Signature"
	queryContentSHA256 = "X-Amz-Content-Sha256"
)

// auth is what a request says about its signature.
type auth struct {
	presigned     bool
	accessKey     string
	date          string // YYYYMMDD of the credential scope
	region        string
	signedHeaders string // as the client listed them
	signature     []byte
	amzDate       string        // X-Amz-Date, or the Date header in amzDateLayout
	expires       time.Duration // presigned only
}

func (a *auth) scope() string {
	return a.date + "/" + a.region + "/" + service + "/" + terminator
}

// signing is an authenticated request: its auth, its payload hash as
// signed, and what the chunk signatures of its body chain from.
type signing struct {
	auth        *auth
	payloadHash string
	key         []byte // the SigV4 signing key of the scope
}

// authenticate checks r's signature. It returns nil for an anonymous request.
func (v *Verifier) authenticate(ctx context.Context, r *http.Request) (*signing, error) {
	query := r.URL.Query()
	a, err := v.parseAuth(r, query)
	if a == nil || err != nil {
		return nil, err
	}
	payloadHash, err := signedPayloadHash(r, a, query)
	if err != nil {
		return nil, err
	}
	if err := checkUnsignedHeaders(r, a); err != nil {
		return nil, err
	}
	secret, err := v.secret(ctx, a.accessKey)
	if err != nil {
		return nil, err
	}
	got, err := resign(ctx, r, a, secret, payloadHash)
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(got, a.signature) {
		return nil, s3err.New(s3err.SignatureDoesNotMatch,
			"The request signature we calculated does not match the signature you provided. "+
				"Check your key and signing method.")
	}
	return &signing{auth: a, payloadHash: payloadHash, key: signingKey(secret, a.date, a.region)}, nil
}

// parseAuth reads what r says about its signature, from the Authorization
// header or the query, and checks its time. It returns nil, nil for an
// anonymous request.
func (v *Verifier) parseAuth(r *http.Request, query url.Values) (*auth, error) {
	authz, hasHeader := r.Header["Authorization"]
	hasQuery := query.Has(queryAlgorithm) || query.Has(queryCredential) || query.Has(querySignature)
	switch {
	case hasHeader && len(authz) == 1 && strings.HasPrefix(authz[0], "AWS "), query.Has("AWSAccessKeyId"):
		return nil, s3err.New(s3err.InvalidRequest,
			"Signature Version 2 is not supported; use Signature Version 4")
	case hasHeader && hasQuery:
		return nil, s3err.New(s3err.InvalidArgument,
			"Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "+
				"Signature query string parameter or the Authorization header should be specified")
	case !hasHeader && !hasQuery:
		return nil, nil
	}

	// The signature covers the query as the signer parses it; a query that
	// does not parse cleanly would be signed without its broken parts.
	if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
		return nil, s3err.Wrap(s3err.InvalidArgument, err, "The query string is malformed.")
	}
	if !hasHeader {
		a, err := parsePresign(query, v.maxPresignExpiry())
		if err != nil {
			return nil, err
		}
		return a, v.checkPresignTime(a)
	}
	if len(authz) != 1 {
		return nil, malformedHeader("only one Authorization header is allowed")
	}
	a, err := parseAuthorization(authz[0])
	if err != nil {
		return nil, err
	}
	return a, v.checkHeaderTime(r, a)
}

// parseAuthorization parses the value of an Authorization header:
// "AWS4-HMAC-SHA256 Credential=AK/YYYYMMDD/REGION/s3/aws4_request,
// SignedHeaders=a;b, Signature=HEX", its components in any order, with or
// without spaces after the commas.
func parseAuthorization(value string) (*auth, error) {
	rest, ok := strings.CutPrefix(value, algorithm+" ")
	if !ok {
		if name, _, _ := strings.Cut(value, " "); name != algorithm {
			return nil, s3err.New(s3err.InvalidArgument, "Unsupported Authorization Type")
		}
		return nil, malformedHeader("missing components")
	}
	a := &auth{}
	var haveCredential, haveHeaders, haveSignature bool
	for _, part := range strings.Split(rest, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, malformedHeader("the component %q is not of the form name=value", part)
		}
		var err error
		switch name {
		case "Credential":
			if haveCredential {
				return nil, malformedHeader("Credential is given twice")
			}
			haveCredential = true
			err = a.setCredential(val)
		case "SignedHeaders":
			if haveHeaders {
				return nil, malformedHeader("SignedHeaders is given twice")
			}
			haveHeaders = true
			err = a.setSignedHeaders(val)
		case "Signature":
			if haveSignature {
				return nil, malformedHeader("Signature is given twice")
			}
			haveSignature = true
			err = a.setSignature(val)
		default:
			return nil, malformedHeader("unknown component %q", name)
		}
		if err != nil {
			return nil, malformedHeader("%s", err.Error())
		}
	}
	if !haveCredential || !haveHeaders || !haveSignature {
		return nil, malformedHeader("it needs Credential, SignedHeaders and Signature")
	}
	return a, nil
}

// parsePresign parses the query parameters of a presigned URL.
func parsePresign(query url.Values, maxExpiry time.Duration) (*auth, error) {
	get := func(name string) (string, error) {
		vs := query[name]
		if len(vs) != 1 {
			return "", queryError("Query-string authentication version 4 requires exactly one of each of " +
				"the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, " +
				"and X-Amz-Expires parameters.")
		}
		return vs[0], nil
	}
	var vals [6]string
	for i, name := range []string{queryAlgorithm, queryCredential, queryDate, queryExpires, querySignedHeaders, querySignature} {
		v, err := get(name)
		if err != nil {
			return nil, err
		}
		vals[i] = v
	}
	alg, credential, date, expires, headers, signature := vals[0], vals[1], vals[2], vals[3], vals[4], vals[5]
	if alg != algorithm {
		return nil, queryError("X-Amz-Algorithm only supports %q", algorithm)
	}
	a := &auth{presigned: true, amzDate: date}
	if err := a.setCredential(credential); err != nil {
		return nil, queryError("%s", err.Error())
	}
	if err := a.setSignedHeaders(headers); err != nil {
		return nil, queryError("%s", err.Error())
	}
	if err := a.setSignature(signature); err != nil {
		return nil, queryError("%s", err.Error())
	}
	secs, err := parseDecimal(expires)
	if err != nil || secs < 1 {
		return nil, queryError("X-Amz-Expires must be a whole number of seconds, at least 1")
	}
	if limit := int64(maxExpiry / time.Second); secs > limit {
		return nil, queryError("X-Amz-Expires must be at most %d seconds", limit)
	}
	a.expires = time.Duration(secs) * time.Second
	return a, nil
}

// setCredential parses "AK/YYYYMMDD/REGION/s3/aws4_request". The errors
// are reasons for a message, not codes.
func (a *auth) setCredential(v string) error {
	parts := strings.Split(v, "/")
	if len(parts) != 5 || parts[0] == "" || parts[2] == "" {
		return reason(`the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request"`)
	}
	if _, err := time.Parse(scopeLayout, parts[1]); err != nil || len(parts[1]) != len(scopeLayout) {
		return reason("the Credential has an invalid date %q", parts[1])
	}
	if parts[3] != service {
		return reason("incorrect service %q; this endpoint belongs to %q", parts[3], service)
	}
	if parts[4] != terminator {
		return reason("incorrect terminal %q; this endpoint uses %q", parts[4], terminator)
	}
	a.accessKey, a.date, a.region = parts[0], parts[1], parts[2]
	return nil
}

// setSignedHeaders checks the list's form; whether it is sorted and
// complete is left to the comparison with what the signer signs.
func (a *auth) setSignedHeaders(v string) error {
	hasHost := false
	for _, name := range strings.Split(v, ";") {
		if name == "" || !isToken(name) {
			return reason("SignedHeaders %q is not a list of header names", v)
		}
		hasHost = hasHost || name == "host"
	}
	if !hasHost {
		return reason("SignedHeaders must include host")
	}
	a.signedHeaders = v
	return nil
}

func (a *auth) setSignature(v string) error {
	sig, err := hex.DecodeString(v)
	if err != nil || len(sig) != 32 {
		return reason("the Signature must be 64 hexadecimal digits")
	}
	a.signature = sig
	return nil
}

// checkHeaderTime takes the request time from X-Amz-Date, or failing that
// from Date, and checks it against the scope and the clock.
func (v *Verifier) checkHeaderTime(r *http.Request, a *auth) error {
	var t time.Time
	if dates := r.Header.Values("X-Amz-Date"); len(dates) > 0 {
		var err error
		if len(dates) != 1 {
			return missingDate()
		}
		if t, err = parseAmzDate(dates[0]); err != nil {
			return missingDate()
		}
	} else {
		var err error
		if t, err = http.ParseTime(r.Header.Get("Date")); err != nil {
			return missingDate()
		}
		t = t.UTC()
	}
	a.amzDate = t.Format(amzDateLayout)
	if a.date != a.amzDate[:len(scopeLayout)] {
		return malformedHeader("Invalid credential date. Date is not the same as X-Amz-Date.")
	}
	if d := v.now().Sub(t); d > v.maxSkew() || d < -v.maxSkew() {
		return s3err.New(s3err.RequestTimeTooSkewed,
			"The difference between the request time and the server's time is too large.")
	}
	return nil
}

func (v *Verifier) checkPresignTime(a *auth) error {
	t, err := parseAmzDate(a.amzDate)
	if err != nil {
		return queryError("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
	}
	if a.date != a.amzDate[:len(scopeLayout)] {
		return queryError("Invalid credential date. Date is not the same as X-Amz-Date.")
	}
	now := v.now()
	if t.Sub(now) > v.maxSkew() {
		return s3err.New(s3err.AccessDenied, "Request is not valid yet")
	}
	if now.After(t.Add(a.expires)) {
		return s3err.New(s3err.AccessDenied, "Request has expired")
	}
	return nil
}

// signedPayloadHash returns the payload hash the client signed: the
// x-amz-content-sha256 header of a header-signed request, the
// X-Amz-Content-Sha256 parameter of a presigned one or else UNSIGNED-PAYLOAD.
func signedPayloadHash(r *http.Request, a *auth, query url.Values) (string, error) {
	if a.presigned {
		switch vs := query[queryContentSHA256]; len(vs) {
		case 0:
			return unsignedPayload, nil
		case 1:
			return vs[0], nil
		}
		return "", queryError("X-Amz-Content-Sha256 is given more than once")
	}
	switch vs := r.Header.Values("X-Amz-Content-Sha256"); len(vs) {
	case 0:
		return "", s3err.New(s3err.InvalidRequest, "Missing required header for this request: x-amz-content-sha256")
	case 1:
		return vs[0], nil
	}
	return "", s3err.New(s3err.InvalidArgument, "x-amz-content-sha256 is given more than once")
}

// checkUnsignedHeaders refuses x-amz-* headers the client did not sign:
// whoever holds a signed request could otherwise add them.
func checkUnsignedHeaders(r *http.Request, a *auth) error {
	signed := make(map[string]bool)
	for _, name := range strings.Split(a.signedHeaders, ";") {
		signed[name] = true
	}
	var unsigned []string
	for name := range r.Header {
		lower := strings.ToLower(name)
		if strings.HasPrefix(lower, "x-amz-") && !signed[lower] {
			unsigned = append(unsigned, lower)
		}
	}
	if len(unsigned) == 0 {
		return nil
	}
	sort.Strings(unsigned)
	return s3err.New(s3err.AccessDenied,
		"There were headers present in the request which were not signed: %s", strings.Join(unsigned, ", "))
}

func parseAmzDate(v string) (time.Time, error) {
	t, err := time.Parse(amzDateLayout, v)
	if err != nil {
		return time.Time{}, err
	}
	if t.Format(amzDateLayout) != v {
		return time.Time{}, reason("%q is not in the form %s", v, amzDateLayout)
	}
	return t, nil
}

// parseDecimal parses a non-negative decimal number of at most 18 digits,
// so it fits an int64 without a sign or overflow.
func parseDecimal(v string) (int64, error) {
	if v == "" || len(v) > 18 || strings.TrimLeft(v, "0123456789") != "" {
		return 0, reason("%q is not a decimal number", v)
	}
	return strconv.ParseInt(v, 10, 64)
}

// isToken reports whether s is a lower-case HTTP header name.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func malformedHeader(format string, args ...any) error {
	return s3err.New(s3err.AuthorizationHeaderMalformed, "The authorization header is malformed; "+format, args...)
}

func queryError(format string, args ...any) error {
	return s3err.New(s3err.AuthorizationQueryParametersError, format, args...)
}

func missingDate() error {
	return s3err.New(s3err.AccessDenied, "AWS authentication requires a valid Date or x-amz-date header")
}

// reason is why an element is malformed, for the message of the code its
// caller picks.
func reason(format string, args ...any) error {
	return fmt.Errorf(format, args...)
}
