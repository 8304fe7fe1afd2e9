package main

import (
	"io"
	"net"
	"reflect"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/gateway"
	"github.com/codename-gateway/codename-gateway/internal/runtest"
	"github.com/codename-gateway/codename-gateway/internal/tlsreload"
	"github.com/codename-gateway/codename-gateway/server"
)

// waitTimeout bounds every wait in these tests.
const waitTimeout = runtest.Timeout

// startRun calls run with args and an empty environment in the
// background; it is stopped when the test ends.
func startRun(t *testing.T, args ...string) *runtest.Run {
	t.Helper()
	return startRunEnv(t, nil, args...)
}

// startRunEnv is startRun with env as the environment.
func startRunEnv(t *testing.T, env map[string]string, args ...string) *runtest.Run {
	t.Helper()
	return runtest.Start(t, run, append([]string{"codename-server", "-drain-delay=0"}, args...), env)
}

// TestAdminListener: the metrics are served on the admin listener, with
// the health, and not on the gRPC port, which serves gRPC and /healthz.
func TestAdminListener(t *testing.T) {
	r := startRun(t, "-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0")
	grpcAddr, admin := r.Addr(t, "gRPC"), r.Addr(t, "admin")

	conn, err := grpc.NewClient("passthrough:///"+grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := codenamev1.NewCodenameCreatorClient(conn).GetCodename(t.Context(), &codenamev1.NameRequest{}); err != nil {
		t.Fatalf("GetCodename: %v", err)
	}

	runtest.CheckAnswers(t, []runtest.Answer{
		{Name: "admin metrics", Addr: admin, Path: "/metrics", Code: 200, Body: `grpc_server_handled_total{grpc_code="OK",grpc_method="GetCodename"`},
		{Name: "admin metrics include the process's", Addr: admin, Path: "/metrics", Code: 200, Body: "go_goroutines"},
		{Name: "admin health", Addr: admin, Path: "/healthz", Code: 200, Body: "SERVING"},
		{Name: "gRPC port metrics", Addr: grpcAddr, Path: "/metrics", Code: 404},
		{Name: "gRPC port health", Addr: grpcAddr, Path: "/healthz", Code: 200, Body: "SERVING"},
	})
	if err := r.Stop(t); err != nil {
		t.Errorf("run: %v", err)
	}
	if _, err := net.DialTimeout("tcp", admin, waitTimeout); err == nil {
		t.Error("admin listener still open after run returned")
	}
}

// TestAdminListenerDisabled: an empty -admin-addr means no admin listener.
func TestAdminListenerDisabled(t *testing.T) {
	startRun(t, "-addr", "127.0.0.1:0", "-admin-addr", "").NotServing(t, "gRPC", "admin")
}

// TestPortTaken: a listener whose port is taken fails run with an error
// that names the listener and the address, which main prints to stderr.
func TestPortTaken(t *testing.T) {
	runtest.CheckPortTaken(t, run, []string{"codename-server"}, []string{"-addr", "-admin-addr"}, func(t *testing.T, flag, taken string, err error) {
		want := map[string]string{"-addr": "gRPC", "-admin-addr": "admin"}[flag] + " listener: listen tcp " + taken + ": bind: address already in use"
		if err == nil || err.Error() != want {
			t.Errorf("run = %v, want %q", err, want)
		}
	})
}

func TestParseFlags(t *testing.T) {
	defaults := options{
		addr:      "127.0.0.1:9090",
		adminAddr: "127.0.0.1:9091",
		cfg: server.Config{
			StreamInterval:        time.Second,
			DrainDelay:            2 * time.Second,
			DrainTimeout:          10 * time.Second,
			MaxRecvMsgSize:        64 << 10,
			MaxConcurrentStreams:  1 << 15,
			MaxConnectionIdle:     5 * time.Minute,
			MaxConnectionAge:      30 * time.Minute,
			MaxConnectionAgeGrace: 5 * time.Minute,
		},
		gateway: gateway.Options{
			MaxBodyBytes: gateway.DefaultMaxBodyBytes,
			CallTimeout:  gateway.DefaultCallTimeout,
			SSEHeartbeat: gateway.DefaultSSEHeartbeat,
		},
	}
	with := func(change func(*options)) options {
		o := defaults
		change(&o)
		return o
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    options
		wantErr bool
	}{
		{name: "defaults", want: defaults},
		{name: "limits from the environment",
			env: map[string]string{
				"CODENAME_MAX_STREAMS_PER_CONN": "100",
				"CODENAME_MAX_CONN_IDLE":        "1m",
				"CODENAME_MAX_CONN_AGE":         "10m",
				"CODENAME_MAX_CONN_AGE_GRACE":   "30s",
			},
			want: with(func(o *options) {
				o.cfg.MaxConcurrentStreams = 100
				o.cfg.MaxConnectionIdle = time.Minute
				o.cfg.MaxConnectionAge = 10 * time.Minute
				o.cfg.MaxConnectionAgeGrace = 30 * time.Second
			})},
		{name: "limits from flags, which win",
			args: []string{"-max-streams-per-conn=10", "-max-conn-idle=2m", "-max-conn-age=-1s", "-max-conn-age-grace=1s"},
			env:  map[string]string{"CODENAME_MAX_STREAMS_PER_CONN": "100", "CODENAME_MAX_CONN_AGE": "10m"},
			want: with(func(o *options) {
				o.cfg.MaxConcurrentStreams = 10
				o.cfg.MaxConnectionIdle = 2 * time.Minute
				o.cfg.MaxConnectionAge = -time.Second
				o.cfg.MaxConnectionAgeGrace = time.Second
			})},
		{name: "admin address from the environment", env: map[string]string{"CODENAME_GRPC_ADMIN_ADDR": "127.0.0.1:7000"},
			want: with(func(o *options) { o.adminAddr = "127.0.0.1:7000" })},
		{name: "no admin listener", args: []string{"-admin-addr="}, env: map[string]string{"CODENAME_GRPC_ADMIN_ADDR": "127.0.0.1:7000"},
			want: with(func(o *options) { o.adminAddr = "" })},
		{name: "TLS from the environment",
			env:  map[string]string{"CODENAME_GRPC_TLS_CERT": "c.pem", "CODENAME_GRPC_TLS_KEY": "k.pem", "CODENAME_GRPC_TLS_CLIENT_CA": "ca.pem"},
			want: with(func(o *options) { o.tls = tlsreload.Files{Cert: "c.pem", Key: "k.pem", CA: "ca.pem"} })},
		{name: "TLS from flags, which win",
			args: []string{"-tls-cert=c2.pem", "-tls-key=k2.pem", "-tls-client-ca="},
			env:  map[string]string{"CODENAME_GRPC_TLS_CERT": "c.pem", "CODENAME_GRPC_TLS_KEY": "k.pem", "CODENAME_GRPC_TLS_CLIENT_CA": "ca.pem"},
			want: with(func(o *options) { o.tls = tlsreload.Files{Cert: "c2.pem", Key: "k2.pem"} })},
		{name: "TLS certificate without key", env: map[string]string{"CODENAME_GRPC_TLS_CERT": "c.pem"}, wantErr: true},
		{name: "TLS key without certificate", args: []string{"-tls-key=k.pem"}, wantErr: true},
		{name: "client CA without certificate", env: map[string]string{"CODENAME_GRPC_TLS_CLIENT_CA": "ca.pem"}, wantErr: true},
		{name: "no streams per connection", args: []string{"-max-streams-per-conn=0"}, wantErr: true},
		{name: "negative streams per connection", args: []string{"-max-streams-per-conn=-1"}, wantErr: true},
		{name: "streams per connection past uint32", args: []string{"-max-streams-per-conn=4294967296"}, wantErr: true},
		{name: "malformed duration in the environment", env: map[string]string{"CODENAME_MAX_CONN_AGE": "forever"}, wantErr: true},
		{name: "co-located gateway, configured as codename-gateway is",
			env: map[string]string{"CODENAME_REST_ADDR": "127.0.0.1:8081", "CODENAME_CALL_TIMEOUT": "3s", "CODENAME_CORS_ORIGINS": "https://app.example.com",
				"CODENAME_GATEWAY_TLS_CERT": "g.pem", "CODENAME_GATEWAY_TLS_KEY": "gk.pem", "CODENAME_GATEWAY_TLS_CLIENT_CA": "ca.pem"},
			want: with(func(o *options) {
				o.restAddr = "127.0.0.1:8081"
				o.gateway.CallTimeout = 3 * time.Second
				o.gateway.CORSOrigins = []string{"https://app.example.com"}
				o.restTLS = tlsreload.Files{Cert: "g.pem", Key: "gk.pem", CA: "ca.pem"}
			})},
		{name: "REST certificate without key", args: []string{"-rest-addr=127.0.0.1:0", "-rest-tls-cert=g.pem"}, wantErr: true},
		{name: "CPU share from the environment", env: map[string]string{"CODENAME_CPU_SHARE": "3"},
			want: with(func(o *options) { o.cpuShare = 3 })},
		{name: "malformed CPU share", env: map[string]string{"CODENAME_CPU_SHARE": "half"}, wantErr: true},
		{name: "malformed CORS origin", env: map[string]string{"CODENAME_CORS_ORIGINS": "https://app.example.com/"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			got, err := parseFlags(append([]string{"codename-server"}, tt.args...), getenv, io.Discard)
			if tt.wantErr {
				if err == nil {
					t.Errorf("parseFlags = %+v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseFlags: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseFlags =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// TestTuning: the server applies GOGC 200 and its share of the cores
// itself, so that systemd and Compose run it as codename-stack does.
func TestTuning(t *testing.T) {
	runtest.CheckTuning(t, func(env map[string]string) *runtest.Run {
		return startRunEnv(t, env, "-addr", "127.0.0.1:0", "-admin-addr", "")
	}, "gRPC")
}
