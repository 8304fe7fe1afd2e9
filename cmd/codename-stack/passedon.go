package main

// passedOn are the environment variables that are no flag of the stack but
// that it hands on to what it starts (every child gets the stack's
// environment): the server's and the gateway's settings (their -help says
// more), and haproxy/haproxy.cfg's. TestHelpNamesHAProxyVariables checks
// that every variable haproxy.cfg reads is a flag, set by the stack, or here.
var passedOn = []struct{ env, usage string }{
	{"CODENAME_STREAM_INTERVAL", "server: pause between codenames on a stream (default 1s)"},
	{"CODENAME_MAX_RECV_BYTES", "server: largest gRPC message it accepts"},
	{"CODENAME_MAX_STREAMS_PER_CONN", "server: streams it allows on one HTTP/2 connection"},
	{"CODENAME_MAX_CONN_IDLE", "server: close a connection idle this long"},
	{"CODENAME_MAX_CONN_AGE", "server: ask clients to reconnect once their connection is this old"},
	{"CODENAME_MAX_CONN_AGE_GRACE", "server: how long the streams of such a connection may go on"},
	{"CODENAME_MAX_BODY_BYTES", "gateway: largest REST body, and largest message of a streaming body"},
	{"CODENAME_CALL_TIMEOUT", "gateway: deadline of a unary REST call"},
	{"CODENAME_SSE_HEARTBEAT", "gateway: longest a Server-Sent Events stream stays silent"},
	{"CODENAME_CORS_ORIGINS", "gateway: origins whose pages may call the gRPC paths with gRPC-Web or Connect clients (default: none)"},
	{"CODENAME_DRAIN_DELAY", "server and gateway: on stop, how long to serve as NOT_SERVING first"},
	{"CODENAME_DRAIN_TIMEOUT", "server and gateway: then, how long to wait for calls in flight"},
	{"CODENAME_BACKEND_TLS", "the stack: TLS behind HAProxy, mutual (the default, with client certificates), on, or off"},
	{"CODENAME_MAXCONN", "HAProxy: connections its public listeners hold at once (default 4000, lowered when ulimit -n is too low)"},
	{"CODENAME_CONN_PER_SOURCE", "HAProxy: connections one client address may hold (default 100)"},
	{"CODENAME_STREAMS_PER_SOURCE", "HAProxy: requests one client address may have in progress (default 200)"},
	{"CODENAME_STREAMS_PER_CONN", "HAProxy: streams on one client HTTP/2 connection (default 100)"},
	{"CODENAME_SERVER_MAXCONN", "HAProxy: unary calls it sends one replica at once (default 500)"},
	{"CODENAME_SERVER_MAXSTREAMS", "HAProxy: streams it sends one replica at once (default 10000)"},
	{"CODENAME_RATE_LIMIT", "HAProxy: requests per 10 s per client address (default: no limit)"},
	{"CODENAME_STATS_USER", "HAProxy: user of the stats listener (default stats)"},
	{"CODENAME_STATS_PASSWORD", "HAProxy: with it set, the stats listener asks for basic auth"},
	{"OTEL_TRACES_EXPORTER", "server and gateway: otlp to export their spans, none never to (unset: only when an OTLP endpoint is set)"},
	{"OTEL_EXPORTER_OTLP_ENDPOINT", "server and gateway: the collector to export spans to; the other standard OTEL_* variables apply too"},
	{"CODENAME_CPU_SHARE", "server and gateway: how many busy processes share the cores, each Go process then scheduling on its equal share (default: the stack's Go processes and HAProxy)"},
	{"GOMAXPROCS", "Go: cores each Go process schedules on; set, it wins over CODENAME_CPU_SHARE"},
	{"GOGC", "Go: the garbage collector's target of the server and the gateway (default 200)"},
}
