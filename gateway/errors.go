package gateway

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// routingErrorHandler answers requests that match no route. A path that
// some other method serves is 405 Method Not Allowed with the Allow header
// RFC 9110 requires (the runtime would say 501 and list nothing), whether
// the runtime or the site serves the path; anything else keeps the
// runtime's answer. Probes (see allow.go) get no answer at all.
func (g *gateway) routingErrorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	if isProbe(r) {
		return
	}
	if httpStatus == http.StatusMethodNotAllowed || httpStatus == http.StatusNotFound {
		if allow := g.allowed(r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			runtime.HTTPError(ctx, mux, m, w, r, &runtime.HTTPStatusError{
				HTTPStatus: http.StatusMethodNotAllowed,
				Err:        status.Errorf(codeOfStatus(http.StatusMethodNotAllowed), "method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", ")),
			})
			return
		}
		httpStatus = http.StatusNotFound
	}
	runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, httpStatus)
}

// errorHandler is the runtime's default error handler, given the public
// form of err (see public) with a message that is valid UTF-8, and a code
// that agrees with the HTTP status (see codeOfStatus).
func errorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, agreeing(stable(validUTF8(public(err)))))
}

// streamErrorHandler does the same for the error line that ends a stream.
func streamErrorHandler(_ context.Context, err error) *status.Status {
	return status.Convert(stable(validUTF8(public(err))))
}

// protoPrefixNBSP is how the protobuf module begins its errors in some
// builds: it picks a no-break space or a space after "proto:" at random,
// build by build, so that nobody compares its messages.
const protoPrefixNBSP = "proto:\u00a0"

// stable gives err the same message in every build: a protojson error
// (an unknown JSON field, a wrong type) begins "proto: " with a plain
// space. The message is the client's only clue; it should not change
// under them from one release to the next.
func stable(err error) error {
	if hse := new(runtime.HTTPStatusError); errors.As(err, &hse) {
		return &runtime.HTTPStatusError{HTTPStatus: hse.HTTPStatus, Err: stable(hse.Err)}
	}
	st := status.Convert(err)
	if !strings.Contains(st.Message(), protoPrefixNBSP) {
		return err
	}
	p := st.Proto()
	p.Message = strings.ReplaceAll(p.Message, protoPrefixNBSP, "proto: ")
	return status.FromProto(p).Err()
}

// agreeing gives an error that carries an HTTP status of its own the gRPC
// code of that status, so that a body's code never contradicts its status
// line, whoever chose the two. An error without one is answered with the
// status of its code, so it agrees already.
func agreeing(err error) error {
	hse := new(runtime.HTTPStatusError)
	if !errors.As(err, &hse) {
		return err
	}
	p := status.Convert(hse.Err).Proto()
	p.Code = int32(codeOfStatus(hse.HTTPStatus))
	return &runtime.HTTPStatusError{HTTPStatus: hse.HTTPStatus, Err: status.FromProto(p).Err()}
}

// public hides how the gateway failed to reach the gRPC server: grpc-go's
// message names internal addresses ("dial tcp 10.0.0.7:9090: connect:
// connection refused"), which callers need not see, also when grpc-go's
// retries wrap it ("max retries exhausted: ... connection error: ..."). A
// server's own UNAVAILABLE (a draining replica says so) keeps its message.
func public(err error) error {
	if hse := new(runtime.HTTPStatusError); errors.As(err, &hse) {
		return &runtime.HTTPStatusError{HTTPStatus: hse.HTTPStatus, Err: public(hse.Err)}
	}
	st, ok := status.FromError(err)
	if ok && st.Code() == codes.Unavailable && strings.Contains(st.Message(), "connection error") {
		return status.Error(codes.Unavailable, "the codename service cannot be reached: retry shortly")
	}
	return err
}

// validUTF8 returns err, or, if its status message is not valid UTF-8, the
// same status with each invalid byte sequence replaced by U+FFFD.
func validUTF8(err error) error {
	if hse := new(runtime.HTTPStatusError); errors.As(err, &hse) {
		return &runtime.HTTPStatusError{HTTPStatus: hse.HTTPStatus, Err: validUTF8(hse.Err)}
	}
	st := status.Convert(err)
	if utf8.ValidString(st.Message()) {
		return err
	}
	p := st.Proto()
	p.Message = strings.ToValidUTF8(p.Message, "\uFFFD")
	return status.FromProto(p).Err()
}

// httpError writes err with an explicit HTTP status in the gateway's JSON
// error shape.
func (g *gateway) httpError(w http.ResponseWriter, r *http.Request, httpStatus int, err error) {
	_, outbound := runtime.MarshalerForRequest(g.mux, r)
	runtime.HTTPError(r.Context(), g.mux, outbound, w, r, &runtime.HTTPStatusError{HTTPStatus: httpStatus, Err: err})
}
