// Package otlptest is a collector for tests: an OTLP endpoint (over HTTP
// or gRPC) on a free loopback port that keeps the spans it is sent, so
// that a test can check what a process exported.
package otlptest

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/encoding/gzip" // the exporter may compress
	"google.golang.org/protobuf/proto"
)

// Span is what a test needs to know of one exported span.
type Span struct {
	Service string // the resource's service.name
	Name    string
	TraceID string // 32 lowercase hex digits
	Kind    string // SPAN_KIND_SERVER, SPAN_KIND_CLIENT...
}

// Receiver is an OTLP trace endpoint.
type Receiver struct {
	url   string
	close func()

	mu       sync.Mutex
	spans    []Span
	requests int
}

// Start serves a Receiver over OTLP/HTTP until Close.
func Start() *Receiver {
	r := &Receiver{}
	srv := httptest.NewServer(http.HandlerFunc(r.export))
	r.url, r.close = srv.URL, srv.Close
	return r
}

// StartGRPC serves a Receiver over OTLP/gRPC, in cleartext, until Close.
func StartGRPC() (*Receiver, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Receiver{url: "http://" + lis.Addr().String()}
	gs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(gs, traceService{r: r})
	go func() { _ = gs.Serve(lis) }()
	r.close = gs.Stop
	return r, nil
}

// URL is what OTEL_EXPORTER_OTLP_ENDPOINT should say (for gRPC, the
// http scheme asks for cleartext).
func (r *Receiver) URL() string { return r.url }

// Close stops the receiver.
func (r *Receiver) Close() { r.close() }

// Spans returns the spans received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Requests counts the requests received, whatever they held.
func (r *Receiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

func (r *Receiver) export(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.requests++
	r.mu.Unlock()
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		http.Error(w, "want POST /v1/traces", http.StatusNotFound)
		return
	}
	body := io.Reader(req.Body)
	if req.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = gz
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var msg coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.keep(&msg)
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

type traceService struct {
	coltracepb.UnimplementedTraceServiceServer
	r *Receiver
}

func (t traceService) Export(_ context.Context, msg *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	t.r.mu.Lock()
	t.r.requests++
	t.r.mu.Unlock()
	t.r.keep(msg)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// keep records the spans of msg.
func (r *Receiver) keep(msg *coltracepb.ExportTraceServiceRequest) {
	var got []Span
	for _, rs := range msg.GetResourceSpans() {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				got = append(got, Span{Service: service, Name: s.GetName(), TraceID: hex.EncodeToString(s.GetTraceId()), Kind: s.GetKind().String()})
			}
		}
	}
	r.mu.Lock()
	r.spans = append(r.spans, got...)
	r.mu.Unlock()
}
