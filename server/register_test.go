package server

import (
	"slices"
	"testing"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
)

// TestHealthAndReflection checks the services registered beside
// CodenameCreator: grpc.health.v1, SERVING for the server and the service,
// and reflection, which lists both.
func TestHealthAndReflection(t *testing.T) {
	s := startServer(t, Config{})
	ctx := t.Context()

	health := healthpb.NewHealthClient(s.conn)
	for _, svc := range []string{"", serviceName} {
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			t.Fatalf("Check(%q): %v", svc, err)
		}
		if got, want := resp.GetStatus(), healthpb.HealthCheckResponse_SERVING; got != want {
			t.Errorf("Check(%q) = %v, want %v", svc, got, want)
		}
	}

	stream, err := reflectionpb.NewServerReflectionClient(s.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatalf("ServerReflectionInfo: %v", err)
	}
	req := &reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}
	if err := stream.Send(req); err != nil {
		t.Fatalf("send: %v", err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	_ = stream.CloseSend()
	var got []string
	for _, svc := range resp.GetListServicesResponse().GetService() {
		got = append(got, svc.GetName())
	}
	for _, want := range []string{serviceName, "grpc.health.v1.Health"} {
		if !slices.Contains(got, want) {
			t.Errorf("reflection lists %q, want it to include %q", got, want)
		}
	}
}
