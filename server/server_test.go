package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait in these tests. It is far longer than any
// of them should take, and far shorter than the intervals the tests use to
// prove that something did not wait for a tick.
const waitTimeout = 10 * time.Second

var serviceName = codenamev1.CodenameCreator_ServiceDesc.ServiceName

// testServer is a Serve running on an in-memory listener, with a client
// connection to it.
type testServer struct {
	server *grpcServer
	lis    *bufconn.Listener
	conn   *grpc.ClientConn
	client codenamev1.CodenameCreatorClient
	logs   *recorder
	// shutdown cancels Serve's context and waits for it to return,
	// reporting its error and how long it took. It is safe to call twice.
	shutdown func() (error, time.Duration)
}

func startServer(t *testing.T, cfg Config, opts ...grpc.DialOption) *testServer {
	t.Helper()
	return startServerWith(t, cfg, nil, opts...)
}

// startServerWith is startServer with the services that register adds to
// the server next to its own.
func startServerWith(t *testing.T, cfg Config, register func(grpc.ServiceRegistrar), opts ...grpc.DialOption) *testServer {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	logs := newRecorder()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(logs)
	}
	s := newServer(cfg)
	if register != nil {
		register(s.gs)
	}
	shutdown := serveBuilt(t, lis, s)
	opts = append([]grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}, opts...)
	conn, err := grpc.NewClient("passthrough:///bufnet", opts...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() }) // runs before shutdown, so no call of ours holds up the drain
	return &testServer{
		server:   s,
		lis:      lis,
		conn:     conn,
		client:   codenamev1.NewCodenameCreatorClient(conn),
		logs:     logs,
		shutdown: shutdown,
	}
}

// serve runs Serve on lis until the test ends, logging to the returned
// recorder unless cfg has a Logger. The returned shutdown is as in
// testServer.
func serve(t *testing.T, lis net.Listener, cfg Config) (*recorder, func() (error, time.Duration)) {
	t.Helper()
	logs := newRecorder()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(logs)
	}
	return logs, serveBuilt(t, lis, newServer(cfg))
}

// serveBuilt serves s on lis, as Serve does, until the test ends.
func serveBuilt(t *testing.T, lis net.Listener, s *grpcServer) func() (error, time.Duration) {
	t.Helper()
	cfg := s.cfg
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- s.serve(ctx, lis) }()
	shutdown := sync.OnceValues(func() (error, time.Duration) {
		start := time.Now()
		cancel()
		select {
		case err := <-served:
			return err, time.Since(start)
		case <-time.After(waitTimeout + cfg.DrainDelay + cfg.DrainTimeout):
			return errors.New("Serve did not return after its context ended"), time.Since(start)
		}
	})
	t.Cleanup(func() {
		if err, _ := shutdown(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return shutdown
}

// recorder is a slog.Handler that keeps the records it is given.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
	added   chan struct{} // closed and replaced on every record
}

func newRecorder() *recorder { return &recorder{added: make(chan struct{})} }

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	close(r.added)
	r.added = make(chan struct{})
	return nil
}

// waitFor waits until a record with message msg and all the given string
// attributes has been logged, and fails the test if none is within
// waitTimeout.
func (r *recorder) waitFor(t *testing.T, msg string, attrs map[string]string) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		r.mu.Lock()
		found := slices.ContainsFunc(r.records, func(rec slog.Record) bool { return matches(rec, msg, attrs) })
		added := r.added
		r.mu.Unlock()
		if found {
			return
		}
		select {
		case <-added:
		case <-deadline:
			t.Fatalf("no log record %q with %v within %v", msg, attrs, waitTimeout)
		}
	}
}

// find returns the records with message msg logged so far.
func (r *recorder) find(msg string) []slog.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var found []slog.Record
	for _, rec := range r.records {
		if rec.Message == msg {
			found = append(found, rec)
		}
	}
	return found
}

// attr returns the value of rec's attribute key as a string.
func attr(rec slog.Record, key string) (value string, ok bool) {
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			value, ok = a.Value.String(), true
			return false
		}
		return true
	})
	return value, ok
}

func (r *recorder) has(msg string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.records, func(rec slog.Record) bool { return rec.Message == msg })
}

func matches(rec slog.Record, msg string, want map[string]string) bool {
	if rec.Message != msg {
		return false
	}
	n := 0
	rec.Attrs(func(a slog.Attr) bool {
		if v, ok := want[a.Key]; ok && a.Value.String() == v {
			n++
		}
		return true
	})
	return n == len(want)
}

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

func TestServeLogsFinishedCalls(t *testing.T) {
	s := startServer(t, Config{})
	if _, err := s.client.GetCodename(t.Context(), &codenamev1.NameRequest{}); err != nil {
		t.Fatalf("GetCodename: %v", err)
	}
	s.logs.waitFor(t, "finished call", map[string]string{methodKey: "GetCodename", "grpc.code": "OK"})
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
	s.logs.waitFor(t, "finished call", map[string]string{methodKey: "GetCodename", codeKey: "InvalidArgument"})
	for _, rec := range s.logs.find("finished call") {
		if m, _ := attr(rec, methodKey); m != "GetCodename" {
			continue
		}
		if rec.Level != slog.LevelInfo {
			t.Errorf("InvalidArgument logged at %v, want INFO", rec.Level)
		}
		if msg, _ := attr(rec, "grpc.error"); !strings.Contains(msg, "dragons") {
			t.Errorf("grpc.error = %q, want the server's message naming the category", msg)
		}
		if typ, _ := attr(rec, methodTypeKey); typ != "unary" {
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
			s.logs.waitFor(t, "finished call", map[string]string{methodKey: method, "grpc.code": code})
			recs := s.logs.find("finished call")
			if len(recs) != 1 {
				t.Fatalf("got %d finished call lines, want 1", len(recs))
			}
			got, ok := attr(recs[0], "api_key")
			switch {
			case tt.want == "" && ok:
				t.Errorf("api_key = %q, want no api_key field", got)
			case tt.want != "" && got != tt.want:
				t.Errorf("api_key = %q (present: %v), want %q", got, ok, tt.want)
			}
		})
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
	s.logs.waitFor(t, "finished call", map[string]string{methodKey: "GetCodename"})
	for _, rec := range s.logs.find("finished call") {
		if svc, _ := attr(rec, serviceKey); svc == healthpb.Health_ServiceDesc.ServiceName {
			t.Errorf("health check logged: %v", rec)
		}
	}
}

// TestServeDrains checks the shutdown order: health turns NOT_SERVING,
// streams end with UNAVAILABLE so clients reconnect elsewhere, and Serve
// returns nil well within DrainTimeout.
func TestServeDrains(t *testing.T) {
	const drainTimeout = 5 * time.Second
	s := startServer(t, Config{StreamInterval: time.Hour, DrainTimeout: drainTimeout})
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()

	health := healthpb.NewHealthClient(s.conn)
	watchCtx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	watch, err := health.Watch(watchCtx, &healthpb.HealthCheckRequest{Service: serviceName})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	if got := recvHealth(t, watch); got != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health before shutdown = %v, want SERVING", got)
	}
	stream := openStream(t, ctx, s.client, "space")
	if got := recvCategory(t, stream); got != "space" {
		t.Fatalf("first name is from %q, want space", got)
	}

	go s.shutdown()

	if got := recvHealth(t, watch); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health after shutdown = %v, want NOT_SERVING", got)
	}
	stopWatching() // a watch never ends by itself; let the drain finish

	_, err = stream.Recv()
	if got, want := status.Code(err), codes.Unavailable; got != want {
		t.Errorf("open stream ended with %v (%v), want %v", got, err, want)
	}

	for _, svc := range []string{"", serviceName} {
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err == nil && resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("Check(%q) after shutdown = %v, want NOT_SERVING or an error", svc, resp.GetStatus())
		}
	}

	err, took := s.shutdown()
	if err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
	if took >= drainTimeout {
		t.Errorf("Serve took %v to drain, want less than DrainTimeout %v", took, drainTimeout)
	}
	if s.logs.has("drain timed out, closing remaining connections") {
		t.Error("drain timed out, want every call to have finished")
	}
}

// TestServeDrainTimeout holds a health watch open, which nothing ends, and
// checks that Serve closes it once DrainTimeout has passed.
func TestServeDrainTimeout(t *testing.T) {
	const drainTimeout = 100 * time.Millisecond
	s := startServer(t, Config{DrainTimeout: drainTimeout})
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	// A reflection stream lives until its client ends it, so it holds the
	// graceful stop open until the timeout.
	refl, err := reflectionpb.NewServerReflectionClient(s.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatalf("ServerReflectionInfo: %v", err)
	}
	if err := refl.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := refl.Recv(); err != nil {
		t.Fatal(err)
	}

	err, took := s.shutdown()
	if err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
	if took < drainTimeout || took > waitTimeout {
		t.Errorf("Serve took %v, want about DrainTimeout %v", took, drainTimeout)
	}
	if !s.logs.has("drain timed out, closing remaining connections") {
		t.Error("no warning that the drain timed out")
	}
	if _, err := refl.Recv(); status.Code(err) != codes.Unavailable {
		t.Errorf("reflection stream ended with %v, want Unavailable", err)
	}
}

// TestServeEndsHealthWatchOnDrain: a watcher (a gateway, say) is told
// NOT_SERVING, then its Watch ends, so that it cannot hold the drain open.
func TestServeEndsHealthWatchOnDrain(t *testing.T) {
	const drainTimeout = 5 * time.Second
	s := startServer(t, Config{DrainTimeout: drainTimeout})
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	watch, err := healthpb.NewHealthClient(s.conn).Watch(ctx, &healthpb.HealthCheckRequest{Service: serviceName})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	if got := recvHealth(t, watch); got != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, want SERVING", got)
	}
	err, took := s.shutdown()
	if err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
	if took >= drainTimeout {
		t.Errorf("Serve took %v: the Watch held the drain open", took)
	}
	if got := recvHealth(t, watch); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health = %v, want NOT_SERVING", got)
	}
	if _, err := watch.Recv(); err == nil {
		t.Error("Watch still open after the drain")
	}
}

// TestServeListenerError checks that Serve fails when its listener does,
// and that it then closes the admin listener too.
func TestServeListenerError(t *testing.T) {
	lis := bufconn.Listen(1)
	_ = lis.Close()
	admin, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	err = Serve(ctx, lis, Config{MetricsListener: admin})
	if err == nil || !strings.HasPrefix(err.Error(), "serve: ") {
		t.Errorf("Serve on a closed listener = %v, want a serve error", err)
	}
	if _, err := admin.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("admin listener Accept after Serve returned: %v, want it closed", err)
	}
}

func recvHealth(t *testing.T, watch grpc.ServerStreamingClient[healthpb.HealthCheckResponse]) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	resp, err := watch.Recv()
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	return resp.GetStatus()
}
