// Package telemetry carries one request's identity through the Go
// processes with OpenTelemetry: the W3C traceparent that HAProxy gives (or
// keeps) is read from each incoming request and written into each outgoing
// gRPC call, so that the edge, the gateway and the server log the same
// trace ID. Spans are exported only when the standard OTEL_* environment
// asks for it; otherwise nothing is recorded and nothing dials anywhere.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Propagator reads and writes the W3C headers traceparent and tracestate,
// and baggage. The server and the gateway pass it to their instrumentation
// themselves rather than relying on the global one, so that ids flow even
// in a process (or a test) that never called Setup.
var Propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Setup installs Propagator as the global propagator and, when getenv
// says that traces are wanted, a TracerProvider that exports them over
// OTLP. Traces are wanted when OTEL_TRACES_EXPORTER is "otlp", or when it
// is unset and OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set; "none", or
// OTEL_SDK_DISABLED=true, turns them off. (The specification's default
// exporter is otlp to localhost; here a process that nobody configured
// sends nothing, anywhere.) The protocol is OTEL_EXPORTER_OTLP_TRACES_PROTOCOL
// or OTEL_EXPORTER_OTLP_PROTOCOL: http/protobuf (the default) or grpc. Every
// other OTEL_* setting (endpoint, headers, certificates, timeouts, sampler,
// batching, resource attributes) is read by the SDK from the process's
// environment as the specification describes. service is the default
// service.name; OTEL_SERVICE_NAME overrides it.
//
// shutdown flushes the spans not yet exported and stops the exporter; call
// it before the process exits. It returns at once when nothing exports.
// enabled says whether spans are exported.
func Setup(ctx context.Context, service string, getenv func(string) string) (shutdown func(context.Context) error, enabled bool, err error) {
	otel.SetTextMapPropagator(Propagator)
	nothing := func(context.Context) error { return nil }
	exporter, err := exporterFromEnv(getenv)
	if err != nil || exporter == "" {
		return nothing, false, err
	}
	var exp sdktrace.SpanExporter
	switch exporter {
	case "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	}
	if err != nil {
		return nothing, false, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
		resource.WithTelemetrySDK(),
	)
	if err != nil {
		return nothing, false, fmt.Errorf("OpenTelemetry resource: %w", err)
	}
	// The sampler is OTEL_TRACES_SAMPLER's, parentbased_always_on by
	// default: a call is recorded when its caller says it is sampled,
	// which HAProxy does for the ids it makes.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	tracing.Store(true)
	return tp.Shutdown, true, nil
}

// tracing says whether Setup installed an exporting TracerProvider.
var tracing atomic.Bool

// Tracing says whether spans are recorded and exported: whether it is
// worth starting one.
func Tracing() bool { return tracing.Load() }

// exporterFromEnv returns the OTLP protocol to export with, or "" when no
// exporter is wanted. A value it does not know is an error, so that a typo
// does not silently turn tracing off.
func exporterFromEnv(getenv func(string) string) (string, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return "", nil
	}
	switch e := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); e {
	case "none":
		return "", nil
	case "":
		if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
			return "", nil
		}
	case "otlp":
	default:
		return "", fmt.Errorf("OTEL_TRACES_EXPORTER=%q: want otlp or none", e)
	}
	protocol := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch protocol = strings.TrimSpace(protocol); protocol {
	case "", "http/protobuf":
		return "http/protobuf", nil
	case "grpc":
		return "grpc", nil
	}
	return "", fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: want http/protobuf or grpc", protocol)
}

// ShutdownTimeout bounds how long a process waits at exit for its last
// spans to reach the collector.
const ShutdownTimeout = 5 * time.Second

// Shutdown calls shutdown with ShutdownTimeout, from a context that is not
// canceled by the one that ended the process. The error, if any, says why
// spans may have been lost.
func Shutdown(ctx context.Context, shutdown func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	if err := shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("export the last spans: %w", err)
	}
	return nil
}

// Start is Setup as a process's main wants it: it says on logger when
// spans are exported, and stop, deferred by main, flushes them at exit
// within ShutdownTimeout and logs why if some may be lost.
func Start(ctx context.Context, service string, getenv func(string) string, logger *slog.Logger) (stop func(), err error) {
	shutdown, enabled, err := Setup(ctx, service, getenv)
	if err != nil {
		return nil, err
	}
	if enabled {
		logger.Info("exporting traces over OTLP")
	}
	return func() {
		if err := Shutdown(ctx, shutdown); err != nil {
			logger.Warn("traces", "err", err)
		}
	}, nil
}

// TraceID is the trace ID of the span in ctx as 32 lowercase hex digits,
// or "" when ctx carries none (a call that came without a traceparent,
// straight to a process, with nothing exporting).
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}
