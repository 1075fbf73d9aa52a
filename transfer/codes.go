package transfer

import (
	"fmt"

	"github.com/loftstore/loft/fault"
)

// Op names a request. Values are defined with the messages (messages.go);
// 0 is reserved for the hello exchange, which this package handles itself.
type Op uint16

// opHello is the op of the first request on a control stream.
const opHello Op = 0

// Code is the status of a response, the code a connection or stream is
// closed with, and the code of a *CodeError: the kind of the error, whose
// numbers are the wire's (see package fault).
type Code = fault.Kind

// CodeError is an error with a wire code: returned by a Handler to choose
// the response code, and returned by Call (and by stream reads and writes
// after a peer's Cancel) when the peer answered with a non-zero code. Its
// kind is its code, so an error that crossed the wire maps to the same exit
// code as it would have where it happened.
type CodeError struct {
	Code Code
	Msg  string
}

func (e *CodeError) Error() string {
	if e.Msg == "" {
		return e.Code.Error()
	}
	return e.Msg
}

// Kind returns the error's code.
func (e *CodeError) Kind() fault.Kind { return e.Code }

// Is makes errors.Is match the error's kind.
func (e *CodeError) Is(target error) bool {
	k, ok := target.(fault.Kind)
	return ok && k == e.Code
}

// CodeOf returns the wire code for err: fault.OK for nil, else its kind. An
// interruption here (a serving node stopping) is not the other side's: it
// travels as fault.Peer.
func CodeOf(err error) Code {
	switch k := fault.Of(err); {
	case err == nil:
		return fault.OK
	case k == fault.OK:
		return fault.Internal
	case k == fault.Interrupted:
		return fault.Peer
	default:
		return k
	}
}

// Errorf returns a *CodeError with a formatted message.
func Errorf(code Code, format string, args ...any) error {
	return &CodeError{Code: code, Msg: fmt.Sprintf(format, args...)}
}
