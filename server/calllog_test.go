package server

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/internal/logtest"
)

func TestServeLogsFinishedCalls(t *testing.T) {
	s := startServer(t, Config{})
	if _, err := s.client.GetCodename(t.Context(), &codenamev1.NameRequest{}); err != nil {
		t.Fatalf("GetCodename: %v", err)
	}
	s.logs.WaitFor(t, "finished call", map[string]string{methodKey: "GetCodename", "grpc.code": "OK"})
}

// TestServeLogsLevelAndError checks that a failed call's line carries the
// error message, at a level that says how much it should worry an operator:
// a caller's mistake is routine (INFO). TestCodeLevel has the other codes.
func TestServeLogsLevelAndError(t *testing.T) {
	s := startServer(t, Config{})
	_, err := s.client.GetCodename(t.Context(), &codenamev1.NameRequest{Category: "dragons"})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("GetCodename(dragons) = %v, want InvalidArgument", err)
	}
	s.logs.WaitFor(t, "finished call", map[string]string{methodKey: "GetCodename", codeKey: "InvalidArgument"})
	for _, rec := range s.logs.Find("finished call") {
		if m := logtest.Attrs(rec)[methodKey].String(); m != "GetCodename" {
			continue
		}
		if rec.Level != slog.LevelInfo {
			t.Errorf("InvalidArgument logged at %v, want INFO", rec.Level)
		}
		if msg := logtest.Attrs(rec)["grpc.error"].String(); !strings.Contains(msg, "dragons") {
			t.Errorf("grpc.error = %q, want the server's message naming the category", msg)
		}
		if typ := logtest.Attrs(rec)[methodTypeKey].String(); typ != "unary" {
			t.Errorf("%s = %q, want unary", methodTypeKey, typ)
		}
	}
}

func TestCodeLevel(t *testing.T) {
	for code, want := range map[codes.Code]slog.Level{
		codes.OK: slog.LevelInfo, codes.Canceled: slog.LevelInfo, codes.InvalidArgument: slog.LevelInfo, codes.Unauthenticated: slog.LevelInfo,
		codes.NotFound: slog.LevelInfo, codes.AlreadyExists: slog.LevelInfo,
		codes.DeadlineExceeded: slog.LevelWarn, codes.ResourceExhausted: slog.LevelWarn, codes.Unavailable: slog.LevelWarn,
		codes.PermissionDenied: slog.LevelWarn, codes.FailedPrecondition: slog.LevelWarn, codes.Aborted: slog.LevelWarn, codes.OutOfRange: slog.LevelWarn,
		codes.Unknown: slog.LevelError, codes.Unimplemented: slog.LevelError, codes.Internal: slog.LevelError, codes.DataLoss: slog.LevelError,
	} {
		if got := codeLevel(code); got != want {
			t.Errorf("codeLevel(%v) = %v, want %v", code, got, want)
		}
	}
}

// TestServeDoesNotLogHealthChecks: health checks come every few seconds
// from every checker, so they stay out of the call log.
func TestServeDoesNotLogHealthChecks(t *testing.T) {
	s := startServer(t, Config{})
	if _, err := healthpb.NewHealthClient(s.conn).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if _, err := s.client.GetCodename(t.Context(), &codenamev1.NameRequest{}); err != nil {
		t.Fatalf("GetCodename: %v", err)
	}
	// The interceptor logs before the response goes out, so the Check,
	// answered before the GetCodename began, would be logged by now.
	s.logs.WaitFor(t, "finished call", map[string]string{methodKey: "GetCodename"})
	for _, rec := range s.logs.Find("finished call") {
		if svc := logtest.Attrs(rec)[serviceKey].String(); svc == healthpb.Health_ServiceDesc.ServiceName {
			t.Errorf("health check logged: %v", rec)
		}
	}
}

// TestServeLogsCaller checks that the "finished call" line names the
// caller by the key ID HAProxy puts in the metadata, and only when there is
// exactly one, so that a client cannot muddle the log by adding its own.
func TestServeLogsCaller(t *testing.T) {
	tests := []struct {
		name   string
		md     metadata.MD
		stream bool
		want   string // "" for no api_key field
	}{
		{name: "unary with a key ID", md: metadata.Pairs(APIKeyIDHeader, "key-1a2b"), want: "key-1a2b"},
		{name: "stream with a key ID", md: metadata.Pairs(APIKeyIDHeader, "key-3c4d"), stream: true, want: "key-3c4d"},
		{name: "no key ID", md: metadata.MD{}},
		{name: "two key IDs", md: metadata.Pairs(APIKeyIDHeader, "key-1", APIKeyIDHeader, "key-2")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkField(t, loggedCall(t, tt.md, tt.stream), apiKeyKey, tt.want)
		})
	}
}

// TestServeLogsTraceID checks that the "finished call" line carries the
// trace ID of the traceparent the call came with (HAProxy or the gateway
// sends one with every call), for unary calls and streams, and no trace_id
// when the call came without a valid one. No exporter is configured: the
// id flows anyway.
func TestServeLogsTraceID(t *testing.T) {
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	valid := "00-" + traceID + "-00f067aa0ba902b7-01"
	tests := []struct {
		name   string
		md     metadata.MD
		stream bool
		want   string // "" for no trace_id field
	}{
		{name: "unary", md: metadata.Pairs("traceparent", valid), want: traceID},
		{name: "stream", md: metadata.Pairs("traceparent", valid), stream: true, want: traceID},
		{name: "not sampled", md: metadata.Pairs("traceparent", "00-"+traceID+"-00f067aa0ba902b7-00"), want: traceID},
		{name: "none", md: metadata.MD{}},
		{name: "malformed", md: metadata.Pairs("traceparent", "00-"+traceID+"-00f067aa0ba902b7")},
		{name: "all zeros", md: metadata.Pairs("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01")},
		{name: "upper case", md: metadata.Pairs("traceparent", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkField(t, loggedCall(t, tt.md, tt.stream), traceIDKey, tt.want)
		})
	}
}

// loggedCall makes one call with md on a server of its own, a unary
// GetCodename or a stream that it cancels after the first name, and
// returns the call's "finished call" line, the only one.
func loggedCall(t *testing.T, md metadata.MD, stream bool) slog.Record {
	t.Helper()
	s := startServer(t, Config{StreamInterval: time.Hour})
	ctx := metadata.NewOutgoingContext(t.Context(), md)
	method, code := "GetCodename", "OK"
	if stream {
		method, code = "KeepGettingCodenames", "Canceled"
		ctx, cancel := context.WithCancel(ctx)
		stream := openStream(t, ctx, s.client, "space")
		recvCategory(t, stream)
		cancel()
	} else if _, err := s.client.GetCodename(ctx, &codenamev1.NameRequest{}); err != nil {
		t.Fatalf("GetCodename: %v", err)
	}
	s.logs.WaitFor(t, "finished call", map[string]string{methodKey: method, codeKey: code})
	recs := s.logs.Find("finished call")
	if len(recs) != 1 {
		t.Fatalf("got %d finished call lines, want 1", len(recs))
	}
	return recs[0]
}

// checkField checks that rec's field key is want, or that rec has no such
// field when want is "".
func checkField(t *testing.T, rec slog.Record, key, want string) {
	t.Helper()
	v, ok := logtest.Attrs(rec)[key]
	got := v.String()
	switch {
	case want == "" && ok:
		t.Errorf("%s = %q, want no %s field", key, got, key)
	case want != "" && got != want:
		t.Errorf("%s = %q (present: %v), want %q", key, got, ok, want)
	}
}
