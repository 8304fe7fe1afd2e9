package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/server/codename"
)

// categoryOf names the category a codename came from, or "" if none.
func categoryOf(name string) string {
	for _, c := range codename.Categories() {
		if codename.MustParse(c).Has(name) {
			return c
		}
	}
	return ""
}

var security = []struct {
	name   string
	secure bool
}{{"tls", true}, {"h2c", false}}

func TestGRPCUnary(t *testing.T) {
	s := shared(t)
	for _, sec := range security {
		t.Run(sec.name, func(t *testing.T) {
			client := s.grpcClient(t, sec.secure)
			for _, tt := range []struct{ category, want string }{
				{"science", "science"},
				{"ANIMALS", "animals"},
				{"", codename.Default},
				{"space", "space"},
			} {
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				res, err := client.GetCodename(ctx, &codenamev1.NameRequest{Category: tt.category})
				cancel()
				if err != nil {
					t.Fatalf("GetCodename(%q): %v", tt.category, err)
				}
				if got := categoryOf(res.GetName()); got != tt.want {
					t.Errorf("GetCodename(%q) = %q, of category %q, want %q", tt.category, res.GetName(), got, tt.want)
				}
			}
		})
	}
}

func TestGRPCUnknownCategory(t *testing.T) {
	s := shared(t)
	for _, sec := range security {
		t.Run(sec.name, func(t *testing.T) {
			_, err := s.grpcClient(t, sec.secure).GetCodename(t.Context(), &codenamev1.NameRequest{Category: "dragons"})
			if got := status.Code(err); got != codes.InvalidArgument {
				t.Fatalf("code = %v (%v), want InvalidArgument", got, err)
			}
			if msg := status.Convert(err).Message(); !strings.Contains(msg, "animals, science, space") {
				t.Errorf("message %q does not name the valid categories", msg)
			}
		})
	}
}

// recvCategory receives up to max codenames and returns once one of
// category want arrives, failing the test otherwise.
func recvCategory(t *testing.T, stream grpc.BidiStreamingClient[codenamev1.NameRequest, codenamev1.NameResult], want string, max int) {
	t.Helper()
	for range max {
		res, err := stream.Recv()
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		if categoryOf(res.GetName()) == want {
			return
		}
	}
	t.Fatalf("no %s codename in %d messages", want, max)
}

// openCodenames opens KeepGettingCodenames on client and asks for category.
func openCodenames(t *testing.T, ctx context.Context, client codenamev1.CodenameCreatorClient, category string) grpc.BidiStreamingClient[codenamev1.NameRequest, codenamev1.NameResult] {
	t.Helper()
	stream, err := client.KeepGettingCodenames(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&codenamev1.NameRequest{Category: category}); err != nil {
		t.Fatal(err)
	}
	return stream
}

// expectCategory receives n codenames and fails unless all are of want.
func expectCategory(t *testing.T, stream grpc.BidiStreamingClient[codenamev1.NameRequest, codenamev1.NameResult], want string, n int) {
	t.Helper()
	for range n {
		res, err := stream.Recv()
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		if got := categoryOf(res.GetName()); got != want {
			t.Fatalf("got %q (%s), want a %s codename", res.GetName(), got, want)
		}
	}
}

func TestGRPCBidiStream(t *testing.T) {
	s := shared(t)
	for _, sec := range security {
		t.Run(sec.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			stream := openCodenames(t, ctx, s.grpcClient(t, sec.secure), "animals")
			expectCategory(t, stream, "animals", 3)

			// The switch applies from the next codename on; one produced
			// before the request arrived may still be in flight.
			if err := stream.Send(&codenamev1.NameRequest{Category: "Science"}); err != nil {
				t.Fatal(err)
			}
			recvCategory(t, stream, "science", 3)
			expectCategory(t, stream, "science", 3)

			// Half-closing keeps the stream going with the last category.
			if err := stream.CloseSend(); err != nil {
				t.Fatal(err)
			}
			expectCategory(t, stream, "science", 3)

			cancel()
			for {
				if _, err := stream.Recv(); err != nil {
					if got := status.Code(err); got != codes.Canceled {
						t.Errorf("after cancel: %v, want Canceled", err)
					}
					break
				}
			}
		})
	}
}

func TestGRPCBidiUnknownCategoryEndsStream(t *testing.T) {
	s := shared(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stream := openCodenames(t, ctx, s.grpcClient(t, true), "dragons")
	_, err := stream.Recv()
	if got := status.Code(err); got != codes.InvalidArgument {
		t.Errorf("Recv: %v, want InvalidArgument", err)
	}
}

// TestLegacyMethodNames calls the service by the names of the original,
// unpackaged sample, which HAProxy rewrites to codename.v1.
func TestLegacyMethodNames(t *testing.T) {
	s := shared(t)
	for _, sec := range security {
		t.Run(sec.name, func(t *testing.T) {
			conn := s.grpcConn(t, sec.secure)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()

			res := new(codenamev1.NameResult)
			if err := conn.Invoke(ctx, "/CodenameCreator/GetCodename", &codenamev1.NameRequest{Category: "space"}, res); err != nil {
				t.Fatalf("legacy GetCodename: %v", err)
			}
			if got := categoryOf(res.GetName()); got != "space" {
				t.Errorf("legacy GetCodename = %q, want a space codename", res.GetName())
			}

			desc := &grpc.StreamDesc{StreamName: "KeepGettingCodenames", ClientStreams: true, ServerStreams: true}
			cs, err := conn.NewStream(ctx, desc, "/CodenameCreator/KeepGettingCodenames")
			if err != nil {
				t.Fatal(err)
			}
			stream := &grpc.GenericClientStream[codenamev1.NameRequest, codenamev1.NameResult]{ClientStream: cs}
			if err := stream.Send(&codenamev1.NameRequest{Category: "science"}); err != nil {
				t.Fatal(err)
			}
			expectCategory(t, stream, "science", 2)

			// Other unpackaged names are not invented: they stay unknown.
			err = conn.Invoke(ctx, "/CodenameCreator/NoSuchMethod", &codenamev1.NameRequest{}, res)
			if got := status.Code(err); got != codes.Unimplemented {
				t.Errorf("unknown legacy method: %v, want Unimplemented", err)
			}
		})
	}
}

func TestHealthAndReflectionThroughHAProxy(t *testing.T) {
	s := shared(t)
	conn := s.grpcConn(t, true)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, svc := range []string{"", codenamev1.CodenameCreator_ServiceDesc.ServiceName} {
		res, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			t.Fatalf("health Check(%q): %v", svc, err)
		}
		if res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health Check(%q) = %v, want SERVING", svc, res.GetStatus())
		}
	}

	rs, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	res, err := rs.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, svc := range res.GetListServicesResponse().GetService() {
		names = append(names, svc.GetName())
	}
	for _, want := range []string{"codename.v1.CodenameCreator", "grpc.health.v1.Health"} {
		if !strings.Contains(strings.Join(names, " "), want) {
			t.Errorf("reflection lists %v, want %s among them", names, want)
		}
	}
}
