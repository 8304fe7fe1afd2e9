package gateway

import (
	"net/http"

	"google.golang.org/grpc/codes"
)

// codeOfStatus is the gRPC code an error body carries when the answer's
// HTTP status was chosen first: by the gateway's own checks, by routing,
// or by HAProxy (haproxy/haproxy.cfg follows this table, and e2e
// TestHTTPRFC holds both to it).
//
// Where grpc-gateway's runtime.HTTPStatusFromCode gives the status for some
// code, the code is that one (where several codes share a status:
// INVALID_ARGUMENT for 400, ALREADY_EXISTS for 409, INTERNAL for 500), so
// that the same error reads the same whichever way it is mapped. The
// statuses that are the image of no code take the code whose meaning is
// nearest:
//   - 405 Method Not Allowed, 406 Not Acceptable, 415 Unsupported Media
//     Type: UNIMPLEMENTED. The resource exists but does not do this (this
//     method, this representation, this media type), which is what gRPC
//     says of a method it lacks; the runtime's own routing answers a wrong
//     method with it too.
//   - 413 Content Too Large, 414 URI Too Long: RESOURCE_EXHAUSTED, the code
//     grpc-go gives a message over its size limit, so that a gRPC and a
//     REST caller sending the same oversized request read the same code.
//   - 408 Request Timeout: DEADLINE_EXCEEDED, the request did not arrive
//     in time.
//   - 502 Bad Gateway: UNAVAILABLE, as gRPC's own HTTP-to-gRPC mapping
//     reads it: the service behind is not answering properly, and a
//     retry may help.
//
// Any other status takes the code of its class: 4xx INVALID_ARGUMENT, 5xx
// INTERNAL.
func codeOfStatus(httpStatus int) codes.Code {
	switch httpStatus {
	case http.StatusBadRequest:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusConflict:
		return codes.AlreadyExists
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case 499: // client closed request, a convention of nginx's
		return codes.Canceled
	case http.StatusInternalServerError:
		return codes.Internal
	case http.StatusNotImplemented:
		return codes.Unimplemented
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	case http.StatusGatewayTimeout:
		return codes.DeadlineExceeded

	case http.StatusMethodNotAllowed, http.StatusNotAcceptable, http.StatusUnsupportedMediaType:
		return codes.Unimplemented
	case http.StatusRequestEntityTooLarge, http.StatusRequestURITooLong:
		return codes.ResourceExhausted
	case http.StatusRequestTimeout:
		return codes.DeadlineExceeded
	case http.StatusBadGateway:
		return codes.Unavailable
	}
	if httpStatus >= 500 {
		return codes.Internal
	}
	return codes.InvalidArgument
}
