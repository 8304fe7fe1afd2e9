package server

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/status"

	"github.com/codename-gateway/codename-gateway/internal/telemetry"
)

// inProcessTracer records the server's span of an in-process call, which
// otelgrpc's stats handler, seeing no transport, cannot. The global tracer
// follows whatever provider telemetry.Setup installs.
var inProcessTracer = otel.Tracer("github.com/codename-gateway/codename-gateway/server")

// traceInProcess starts the span a call from the network would get from
// otelgrpc when spans are exported: the same name, kind and rpc.*
// attributes, so that a trace looks alike in either gateway mode. Health
// checks get none, as from the network. end records the call's outcome.
func traceInProcess(ctx context.Context, method string) (context.Context, func(error)) {
	if !telemetry.Tracing() || strings.HasPrefix(method, healthPrefix) {
		return ctx, func(error) {}
	}
	name := strings.TrimPrefix(method, "/")
	service, m, _ := strings.Cut(name, "/")
	ctx, span := inProcessTracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		attribute.String("rpc.system", "grpc"),
		attribute.String("rpc.service", service),
		attribute.String("rpc.method", m),
	))
	return ctx, func(err error) {
		st := status.Convert(err)
		span.SetAttributes(attribute.Int64("rpc.grpc.status_code", int64(st.Code())))
		if err != nil {
			span.SetStatus(otelcodes.Error, st.Message())
		}
		span.End()
	}
}
