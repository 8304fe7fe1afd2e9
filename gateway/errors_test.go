package gateway

import (
	"errors"
	"net/http"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestStableMessages: a protojson error reads the same whichever space the
// build put after "proto:", inside an HTTPStatusError too; other messages
// are left as they are.
func TestStableMessages(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"no-break space", status.Error(codes.InvalidArgument, "proto:\u00a0(line 1:2): unknown field \"categroy\""), `proto: (line 1:2): unknown field "categroy"`},
		{"space", status.Error(codes.InvalidArgument, "proto: (line 1:2): unknown field \"categroy\""), `proto: (line 1:2): unknown field "categroy"`},
		{"with a status", &runtime.HTTPStatusError{HTTPStatus: http.StatusBadRequest, Err: status.Error(codes.InvalidArgument, "proto:\u00a0syntax error")}, "proto: syntax error"},
		{"other", status.Error(codes.InvalidArgument, "a\u00a0b"), "a\u00a0b"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := stable(tt.err)
			if hse := new(runtime.HTTPStatusError); errors.As(err, &hse) {
				err = hse.Err
			}
			if got := status.Convert(err).Message(); got != tt.want {
				t.Errorf("message %q, want %q", got, tt.want)
			}
		})
	}
}
