package gateway

import (
	"context"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// routingErrorHandler answers requests that match no route. It keeps the
// runtime's JSON error body but gives a wrong method its proper 405 status;
// the runtime would say 501 Not Implemented.
func routingErrorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	if httpStatus != http.StatusMethodNotAllowed {
		runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, httpStatus)
		return
	}
	runtime.HTTPError(ctx, mux, m, w, r, &runtime.HTTPStatusError{
		HTTPStatus: http.StatusMethodNotAllowed,
		Err:        status.Errorf(codes.Unimplemented, "method %s is not allowed on %s", r.Method, r.URL.Path),
	})
}

// httpError writes err with an explicit HTTP status in the gateway's JSON
// error shape.
func (g *gateway) httpError(w http.ResponseWriter, r *http.Request, httpStatus int, err error) {
	_, outbound := runtime.MarshalerForRequest(g.mux, r)
	runtime.HTTPError(r.Context(), g.mux, outbound, w, r, &runtime.HTTPStatusError{HTTPStatus: httpStatus, Err: err})
}
