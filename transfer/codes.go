package transfer

import (
	"errors"
	"fmt"
)

// Op names a request. Values are defined with the messages (messages.go);
// 0 is reserved for the hello exchange, which this package handles itself.
type Op uint16

// opHello is the op of the first request on a control stream.
const opHello Op = 0

// Code is the status of a response, the code a connection or stream is
// closed with, or the code of a *CodeError.
type Code uint16

// Response codes. Their numbers are part of the wire protocol: never reuse
// or renumber one.
const (
	CodeOK          Code = 0
	CodeBadRequest  Code = 1
	CodeUnsupported Code = 2
	CodeNotFound    Code = 3
	CodeIntegrity   Code = 4
	CodeBusy        Code = 5
	CodeInternal    Code = 6
	CodeDenied      Code = 7
	CodeTooLarge    Code = 8
	CodeNoSpace     Code = 9
	CodeConflict    Code = 10
)

// String names the code for messages and logs.
func (c Code) String() string {
	switch c {
	case CodeOK:
		return "ok"
	case CodeBadRequest:
		return "bad request"
	case CodeUnsupported:
		return "unsupported"
	case CodeNotFound:
		return "not found"
	case CodeIntegrity:
		return "integrity"
	case CodeBusy:
		return "busy"
	case CodeInternal:
		return "internal"
	case CodeDenied:
		return "denied"
	case CodeTooLarge:
		return "too large"
	case CodeNoSpace:
		return "no space"
	case CodeConflict:
		return "conflict"
	}
	return fmt.Sprintf("code %d", uint16(c))
}

// CodeError is an error with a wire code: returned by a Handler to choose
// the response code, and returned by Call (and by stream reads and writes
// after a peer's Cancel) when the peer answered with a non-zero code.
type CodeError struct {
	Code Code
	Msg  string
}

func (e *CodeError) Error() string {
	return fmt.Sprintf("peer error %d (%s): %s", uint16(e.Code), e.Code, e.Msg)
}

// CodeOf returns the wire code for err: CodeOK for nil, the code of a
// *CodeError found with errors.As, CodeInternal for anything else.
func CodeOf(err error) Code {
	if err == nil {
		return CodeOK
	}
	var ce *CodeError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return CodeInternal
}

// Errorf returns a *CodeError with a formatted message.
func Errorf(code Code, format string, args ...any) error {
	return &CodeError{Code: code, Msg: fmt.Sprintf(format, args...)}
}
