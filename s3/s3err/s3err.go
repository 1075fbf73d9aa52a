// Package s3err is the S3 gateway's one error type: an S3 error code with
// its HTTP status and a message for the client. Every refusal of the
// gateway, from authentication to a missing key, is an *Error by the time
// it is written as the XML body S3 clients expect.
package s3err

import (
	"errors"
	"fmt"
	"net/http"
)

// Code is an S3 error code, as S3 spells it.
type Code string

// The codes the gateway sends.
const (
	AccessDenied                      Code = "AccessDenied"
	AuthorizationHeaderMalformed      Code = "AuthorizationHeaderMalformed"
	AuthorizationQueryParametersError Code = "AuthorizationQueryParametersError"
	BadDigest                         Code = "BadDigest"
	BucketAlreadyExists               Code = "BucketAlreadyExists"
	BucketAlreadyOwnedByYou           Code = "BucketAlreadyOwnedByYou"
	BucketNotEmpty                    Code = "BucketNotEmpty"
	EntityTooLarge                    Code = "EntityTooLarge"
	EntityTooSmall                    Code = "EntityTooSmall"
	IncompleteBody                    Code = "IncompleteBody"
	InternalError                     Code = "InternalError"
	InvalidAccessKeyID                Code = "InvalidAccessKeyId"
	InvalidArgument                   Code = "InvalidArgument"
	InvalidBucketName                 Code = "InvalidBucketName"
	InvalidDigest                     Code = "InvalidDigest"
	InvalidPart                       Code = "InvalidPart"
	InvalidPartOrder                  Code = "InvalidPartOrder"
	InvalidRange                      Code = "InvalidRange"
	InvalidRequest                    Code = "InvalidRequest"
	InvalidStorageClass               Code = "InvalidStorageClass"
	KeyTooLong                        Code = "KeyTooLongError"
	MalformedXML                      Code = "MalformedXML"
	MalformedTrailer                  Code = "MalformedTrailerError"
	MethodNotAllowed                  Code = "MethodNotAllowed"
	MissingContentLength              Code = "MissingContentLength"
	MissingSecurityHeader             Code = "MissingSecurityHeader"
	NoSuchBucket                      Code = "NoSuchBucket"
	NoSuchKey                         Code = "NoSuchKey"
	NoSuchUpload                      Code = "NoSuchUpload"
	NoSuchVersion                     Code = "NoSuchVersion"
	NotImplemented                    Code = "NotImplemented"
	PreconditionFailed                Code = "PreconditionFailed"
	RequestTimeTooSkewed              Code = "RequestTimeTooSkewed"
	ServiceUnavailable                Code = "ServiceUnavailable"
	SignatureDoesNotMatch             Code = "SignatureDoesNotMatch"
	SlowDown                          Code = "SlowDown"
	XAmzContentSHA256Mismatch         Code = "XAmzContentSHA256Mismatch"
	InsufficientStorage               Code = "InsufficientStorage"
	NotModified                       Code = "NotModified"
)

// Status returns the HTTP status S3 sends with the code.
func (c Code) Status() int {
	switch c {
	case AccessDenied, InvalidAccessKeyID, RequestTimeTooSkewed, SignatureDoesNotMatch:
		return http.StatusForbidden
	case NoSuchBucket, NoSuchKey, NoSuchUpload, NoSuchVersion:
		return http.StatusNotFound
	case BucketAlreadyExists, BucketAlreadyOwnedByYou, BucketNotEmpty:
		return http.StatusConflict
	case MethodNotAllowed:
		return http.StatusMethodNotAllowed
	case MissingContentLength:
		return http.StatusLengthRequired
	case PreconditionFailed:
		return http.StatusPreconditionFailed
	case InvalidRange:
		return http.StatusRequestedRangeNotSatisfiable
	case NotModified:
		return http.StatusNotModified
	case NotImplemented:
		return http.StatusNotImplemented
	case InternalError:
		return http.StatusInternalServerError
	case ServiceUnavailable, SlowDown:
		return http.StatusServiceUnavailable
	case InsufficientStorage:
		return http.StatusInsufficientStorage
	}
	return http.StatusBadRequest
}

// Error is an S3 error: a code, a message for the client and, where one
// led to it, the cause (kept for the log, never sent).
type Error struct {
	Code    Code
	Message string
	Err     error
}

// New returns an error with code and a message made by fmt.Sprintf.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an error with code and message whose cause is err.
func Wrap(code Code, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// As returns err's *Error, if it wraps one.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
