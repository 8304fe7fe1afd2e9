package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
)

// registerServices registers what the server serves: CodenameCreator,
// whose streams send a codename every interval and end on draining and
// which counts them in open; grpc.health.v1, whose Watch streams end on
// draining too; and server reflection, for grpcurl and other tools. It
// returns the health server, which says SERVING until the drain.
func registerServices(reg *recordingRegistrar, interval time.Duration, draining chan struct{}, open prometheus.Gauge) *health.Server {
	codenamev1.RegisterCodenameCreatorServer(reg, &service{interval: interval, draining: draining, open: open})
	hs := health.NewServer()
	healthpb.RegisterHealthServer(reg, drainingHealth{hs, draining})
	hs.SetServingStatus(codenamev1.CodenameCreator_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	reflection.Register(reg.gs)
	return hs
}

// unaryMethod is one unary method of a registered service.
type unaryMethod struct {
	impl    any
	handler grpc.MethodHandler
}

// recordingRegistrar registers services on the grpc.Server and notes
// their unary methods for the in-process connection.
type recordingRegistrar struct {
	gs      *grpc.Server
	methods map[string]unaryMethod
}

func (r *recordingRegistrar) RegisterService(desc *grpc.ServiceDesc, impl any) {
	r.gs.RegisterService(desc, impl)
	for _, m := range desc.Methods {
		r.methods["/"+desc.ServiceName+"/"+m.MethodName] = unaryMethod{impl, m.Handler}
	}
}
