package server

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
)

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
			s := startServer(t, Config{StreamInterval: time.Hour})
			ctx := metadata.NewOutgoingContext(t.Context(), tt.md)
			method, code := "GetCodename", "OK"
			if tt.stream {
				method, code = "KeepGettingCodenames", "Canceled"
				ctx, cancel := context.WithCancel(ctx)
				stream := openStream(t, ctx, s.client, "space")
				recvCategory(t, stream)
				cancel()
			} else if _, err := s.client.GetCodename(ctx, &codenamev1.NameRequest{}); err != nil {
				t.Fatalf("GetCodename: %v", err)
			}
			s.logs.waitFor(t, "finished call", map[string]string{methodKey: method, codeKey: code})
			recs := s.logs.find("finished call")
			if len(recs) != 1 {
				t.Fatalf("got %d finished call lines, want 1", len(recs))
			}
			got, ok := attr(recs[0], traceIDKey)
			switch {
			case tt.want == "" && ok:
				t.Errorf("trace_id = %q, want no trace_id field", got)
			case tt.want != "" && got != tt.want:
				t.Errorf("trace_id = %q (present: %v), want %q", got, ok, tt.want)
			}
		})
	}
}
