package server

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/internal/logtest"
	"github.com/codename-gateway/codename-gateway/internal/promtest"
)

// secret stands for whatever a panic value may hold that a client must not
// see.
const secret = "password=hunter2"

// panickingService panics in UnaryCall and FullDuplexCall; EmptyCall works.
type panickingService struct {
	testpb.UnimplementedTestServiceServer
}

func (panickingService) EmptyCall(context.Context, *testpb.Empty) (*testpb.Empty, error) {
	return &testpb.Empty{}, nil
}

func (panickingService) UnaryCall(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	panic("unary handler broke: " + secret)
}

func (panickingService) FullDuplexCall(grpc.BidiStreamingServer[testpb.StreamingOutputCallRequest, testpb.StreamingOutputCallResponse]) error {
	panic("stream handler broke: " + secret)
}

// TestServeRecoversPanics checks that a handler's panic fails only its own
// call, with INTERNAL and a message that gives nothing away, that the
// operator finds the panic and its stack in the log at ERROR, that the call
// log and the metrics count the call, and that the server goes on serving.
// Without recovery the panic ends the test binary.
func TestServeRecoversPanics(t *testing.T) {
	s := startServerWith(t, Config{}, func(r grpc.ServiceRegistrar) { testpb.RegisterTestServiceServer(r, panickingService{}) })
	test := testpb.NewTestServiceClient(s.conn)
	tests := []struct {
		name     string
		method   string
		call     func(ctx context.Context) error
		wantType string
	}{
		{name: "unary", method: "UnaryCall", wantType: "unary", call: func(ctx context.Context) error {
			_, err := test.UnaryCall(ctx, &testpb.SimpleRequest{})
			return err
		}},
		{name: "stream", method: "FullDuplexCall", wantType: "bidi_stream", call: func(ctx context.Context) error {
			stream, err := test.FullDuplexCall(ctx)
			if err != nil {
				return err
			}
			_, err = stream.Recv()
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(t.Context())
			st := status.Convert(err)
			if st.Code() != codes.Internal || st.Message() != panicMessage {
				t.Errorf("%s after a panic = %v, want %v %q", tt.method, err, codes.Internal, panicMessage)
			}

			s.logs.WaitFor(t, "panic in call", map[string]string{methodKey: tt.method})
			for _, rec := range s.logs.Find("panic in call") {
				if m := logtest.Attrs(rec)[methodKey].String(); m != tt.method {
					continue
				}
				if rec.Level != slog.LevelError {
					t.Errorf("panic logged at %v, want ERROR", rec.Level)
				}
				if p := logtest.Attrs(rec)["panic"].String(); !strings.Contains(p, secret) {
					t.Errorf("panic = %q, want the panic value", p)
				}
				if stack := logtest.Attrs(rec)["stack"].String(); !strings.Contains(stack, "panickingService."+tt.method) {
					t.Errorf("stack does not show where the panic began:\n%s", stack)
				}
			}
			s.logs.WaitFor(t, "finished call", map[string]string{methodKey: tt.method, codeKey: "Internal", methodTypeKey: tt.wantType})
		})
	}

	// The replica lives on, for the service that panicked as for the others.
	if _, err := test.EmptyCall(t.Context(), &testpb.Empty{}); err != nil {
		t.Errorf("EmptyCall after the panics: %v", err)
	}
	if _, err := s.client.GetCodename(t.Context(), &codenamev1.NameRequest{}); err != nil {
		t.Errorf("GetCodename after the panics: %v", err)
	}

	rec := httptest.NewRecorder()
	promhttp.HandlerFor(s.server.reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/metrics", nil))
	for _, tt := range tests {
		labels := map[string]string{"grpc_method": tt.method, "grpc_code": "Internal"}
		if got, ok := promtest.Sum(rec.Body.String(), "grpc_server_handled_total", labels); !ok || got != 1 {
			t.Errorf("grpc_server_handled_total%v = %v (present: %v), want 1", labels, got, ok)
		}
	}
}
