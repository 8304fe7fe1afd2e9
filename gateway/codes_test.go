package gateway

import (
	"net/http"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
)

// TestCodeOfStatusAgreesWithTheRuntime: for every status grpc-gateway
// maps some code to, codeOfStatus gives a code that maps back to it; the
// statuses no code maps to get the documented nearest code.
func TestCodeOfStatusAgreesWithTheRuntime(t *testing.T) {
	for c := codes.Canceled; c <= codes.Unauthenticated; c++ {
		st := runtime.HTTPStatusFromCode(c)
		if got := runtime.HTTPStatusFromCode(codeOfStatus(st)); got != st {
			t.Errorf("status %d (of %v): codeOfStatus gives %v, which maps to %d", st, c, codeOfStatus(st), got)
		}
	}
	for _, tt := range []struct {
		status int
		want   codes.Code
	}{
		{http.StatusBadRequest, codes.InvalidArgument},
		{http.StatusConflict, codes.AlreadyExists},
		{http.StatusInternalServerError, codes.Internal},
		{http.StatusMethodNotAllowed, codes.Unimplemented},
		{http.StatusNotAcceptable, codes.Unimplemented},
		{http.StatusUnsupportedMediaType, codes.Unimplemented},
		{http.StatusRequestEntityTooLarge, codes.ResourceExhausted},
		{http.StatusRequestURITooLong, codes.ResourceExhausted},
		{http.StatusRequestTimeout, codes.DeadlineExceeded},
		{http.StatusBadGateway, codes.Unavailable},
		{http.StatusTeapot, codes.InvalidArgument},
		{http.StatusLoopDetected, codes.Internal},
	} {
		if got := codeOfStatus(tt.status); got != tt.want {
			t.Errorf("codeOfStatus(%d) = %v, want %v", tt.status, got, tt.want)
		}
	}
}

// TestCompactJSON: whatever spacing the JSON marshaler under it chooses,
// as protojson does at random from build to build, the bytes are compact.
func TestCompactJSON(t *testing.T) {
	m := compactJSON{&runtime.JSONPb{}}
	m.MarshalOptions.Multiline, m.MarshalOptions.Indent = true, "   "
	for _, tt := range []struct {
		name string
		v    any
		want string
	}{
		{"message", &codenamev1.NameResult{Name: "Bold Badger"}, `{"name":"Bold Badger"}`},
		{"stream line", map[string]proto.Message{"result": &codenamev1.NameResult{Name: "Bold Badger"}}, `{"result":{"name":"Bold Badger"}}`},
		{"spaces in strings stay", &codenamev1.NameRequest{Category: " a : b "}, `{"category":" a : b "}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("Marshal = %q, want %q", got, tt.want)
			}
			var buf bytesWriter
			if err := m.NewEncoder(&buf).Encode(tt.v); err != nil {
				t.Fatal(err)
			}
			if string(buf) != tt.want {
				t.Errorf("Encode wrote %q, want %q", buf, tt.want)
			}
		})
	}
}

type bytesWriter []byte

func (b *bytesWriter) Write(p []byte) (int, error) {
	*b = append(*b, p...)
	return len(p), nil
}
