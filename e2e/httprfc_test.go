package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"

	"github.com/codename-gateway/codename-gateway/internal/poll"
)

// rfcRequest is one request of TestHTTPRFC and the answer it must get.
type rfcRequest struct {
	name    string
	method  string
	target  string
	header  []string // name, value, ...
	body    string
	noKey   bool   // sent without the API key
	status  int    // wanted HTTP status
	allow   string // wanted Allow header (405 only)
	message string // text the error message must hold
}

// rfcCode is the gRPC code each error status must carry in its JSON body,
// from HAProxy or from the gateway: the code grpc-gateway's
// runtime.HTTPStatusFromCode maps to that status, or, for 405, 406 and 413,
// which no code maps to, the one the gateway's codeOfStatus documents.
var rfcCode = map[int]codes.Code{
	http.StatusBadRequest:            codes.InvalidArgument,
	http.StatusUnauthorized:          codes.Unauthenticated,
	http.StatusNotFound:              codes.NotFound,
	http.StatusMethodNotAllowed:      codes.Unimplemented,
	http.StatusNotAcceptable:         codes.Unimplemented,
	http.StatusRequestEntityTooLarge: codes.ResourceExhausted,
	http.StatusTooManyRequests:       codes.ResourceExhausted,
	http.StatusServiceUnavailable:    codes.Unavailable,
	http.StatusGatewayTimeout:        codes.DeadlineExceeded,
}

// statusLine is an HTTP/1.1 status line with a reason phrase (RFC 9112
// lets it be empty; every client shows it, so it never is here).
var statusLine = regexp.MustCompile(`^HTTP/1\.1 ([0-9]{3}) ([^\r\n]+)\r\n`)

// TestHTTPRFC sends every kind of request HAProxy or the gateway answers
// with an error, through HAProxy, over HTTP/1.1 on a raw socket and over
// HTTP/2, and checks each answer: an HTTP/1.1 status line with a reason
// phrase; the JSON error shape whose code agrees with the status (rfcCode);
// on a 405 the Allow header with what the path answers to, the same from
// HAProxy (methods it refuses itself) as from the gateway (the others);
// unknown query parameters refused by name. Then the limits: 429 from
// HAProxy, and 503 from the gateway (no gRPC server) and from HAProxy (no
// gateway).
func TestHTTPRFC(t *testing.T) {
	const key = "rfc-key"
	s := start(t, apiKey(key), withEnv("CODENAME_RATE_LIMIT=60"))
	big := `{"category":"` + strings.Repeat("a", 70<<10) + `"}`
	requests := []rfcRequest{
		{name: "a codename", method: "GET", target: "/v1/codename?category=space", status: 200},
		{name: "unknown category", method: "GET", target: "/v1/codename?category=dragons", status: 400, message: `unknown category "dragons"`},
		{name: "unknown query parameter", method: "GET", target: "/v1/codename?categroy=space", status: 400,
			message: `unknown query parameter "categroy": GET /v1/codename takes only category`},
		{name: "query on a body route", method: "POST", target: "/v1/codename?category=space", header: []string{"Content-Type", "application/json"}, body: `{}`, status: 400,
			message: `unknown query parameter "category": POST /v1/codename takes no query parameters`},
		{name: "unknown query parameter on the stream", method: "GET", target: "/v1/codenames:stream?categroy=space", header: []string{"Accept", "text/event-stream"}, status: 400,
			message: `unknown query parameter "categroy"`},
		{name: "unknown query parameter on categories", method: "GET", target: "/v1/categories?verbose=1", status: 400,
			message: `unknown query parameter "verbose": GET /v1/categories takes no query parameters`},
		{name: "unknown query parameter on health", method: "GET", target: "/healthz?services=x", status: 400, message: `unknown query parameter "services"`},
		{name: "unknown JSON field", method: "POST", target: "/v1/codename", header: []string{"Content-Type", "application/json"}, body: `{"categroy":"space"}`, status: 400, message: `"categroy"`},
		{name: "malformed path", method: "GET", target: "/v1/../metrics", status: 400, message: "malformed request"},
		{name: "no key", method: "GET", target: "/v1/codename", noKey: true, status: 401, message: "API key"},
		{name: "unknown path", method: "GET", target: "/nope", status: 404},
		{name: "metrics at the edge", method: "GET", target: "/metrics", status: 404},
		{name: "PUT on codename, refused by HAProxy", method: "PUT", target: "/v1/codename", status: 405, allow: "GET, POST",
			message: "method PUT is not allowed on /v1/codename (allowed: GET, POST)"},
		{name: "OPTIONS on codename, refused by the gateway", method: "OPTIONS", target: "/v1/codename", status: 405, allow: "GET, POST",
			message: "method OPTIONS is not allowed on /v1/codename (allowed: GET, POST)"},
		{name: "DELETE on the stream, refused by HAProxy", method: "DELETE", target: "/v1/codenames:stream", status: 405, allow: "GET, POST"},
		{name: "OPTIONS on the stream, refused by the gateway", method: "OPTIONS", target: "/v1/codenames:stream", status: 405, allow: "GET, POST"},
		{name: "PATCH on categories, refused by HAProxy", method: "PATCH", target: "/v1/categories", status: 405, allow: "GET"},
		{name: "POST on categories, refused by the gateway", method: "POST", target: "/v1/categories", header: []string{"Content-Type", "application/json"}, body: `{}`, status: 405, allow: "GET"},
		{name: "PUT on health, refused by HAProxy", method: "PUT", target: "/healthz", status: 405, allow: "GET"},
		{name: "POST on health, refused by the gateway", method: "POST", target: "/healthz", status: 405, allow: "GET"},
		{name: "DELETE on the document, refused by HAProxy", method: "DELETE", target: "/openapi.json", status: 405, allow: "GET, HEAD"},
		// A gRPC content type does not make the JSON answer a gRPC one.
		{name: "PUT on an RPC with a gRPC content type, refused by HAProxy", method: "PUT", target: "/codename.v1.CodenameCreator/GetCodename",
			header: []string{"Content-Type", "application/grpc"}, status: 405, allow: "POST",
			message: "method PUT is not allowed on /codename.v1.CodenameCreator/GetCodename (allowed: POST)"},
		{name: "POST on the document, refused by the gateway", method: "POST", target: "/openapi.json", status: 405, allow: "GET, HEAD"},
		{name: "OPTIONS on the page, refused by the gateway", method: "OPTIONS", target: "/", status: 405, allow: "GET, HEAD"},
		{name: "stream without upgrade or event-stream", method: "GET", target: "/v1/codenames:stream", status: 406, message: "needs a WebSocket upgrade"},
		{name: "body too large", method: "POST", target: "/v1/codename", header: []string{"Content-Type", "application/json"}, body: big, status: 413, message: "request body is larger than"},
		{name: "deadline too short", method: "GET", target: "/v1/codename", header: []string{"Grpc-Timeout", "1n"}, status: 504},
	}
	withKey := func(r rfcRequest) rfcRequest {
		if !r.noKey {
			r.header = append([]string{"X-Api-Key", key}, r.header...)
		}
		return r
	}
	// Each protocol from an address of its own, so that the rate limit,
	// per address, leaves them all their requests.
	t.Run("HTTP/1.1", func(t *testing.T) {
		for _, r := range requests {
			t.Run(r.name, func(t *testing.T) { checkRFCAnswerH1(t, s, "127.0.0.2", withKey(r)) })
		}
	})
	t.Run("HTTP/2", func(t *testing.T) {
		c := h2ClientFrom(s, "127.0.0.3")
		for _, r := range requests {
			t.Run(r.name, func(t *testing.T) { checkRFCAnswerH2(t, s, c, withKey(r)) })
		}
	})

	t.Run("unparsable request", func(t *testing.T) {
		// A request line longer than HAProxy's buffer is refused before
		// any rule runs, so with HAProxy's built-in HTML page (400 on
		// 2.6, 414 from 3.0; 3.2 would take an errorfile 400 for other
		// parse errors, but a file beside the config is one more thing
		// every deployment must ship). Its status line still has a reason.
		r := withKey(rfcRequest{method: "GET", target: "/v1/codename?category=" + strings.Repeat("a", 20<<10)})
		resp, _, line, err := rawH1From("127.0.0.2", s.cfg.HTTPAddr, r)
		if err != nil {
			t.Fatal(err)
		}
		m := statusLine.FindStringSubmatch(line)
		if m == nil || (resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusRequestURITooLong) || strings.TrimSpace(m[2]) == "" {
			t.Errorf("status line %q, want 400 or 414 with a reason phrase", line)
		}
	})

	t.Run("rate limit", func(t *testing.T) {
		// Over 60 requests in 10 s from one address: HAProxy's 429.
		r := withKey(rfcRequest{method: "GET", target: "/v1/codename", status: 429, message: "rate limit exceeded"})
		for i := range 100 {
			a, _, _, err := rawH1From("127.0.0.4", s.cfg.HTTPAddr, r)
			if err != nil {
				t.Fatal(err)
			}
			if a.StatusCode == http.StatusTooManyRequests {
				t.Logf("429 after %d requests", i+1)
				checkRFCAnswerH1(t, s, "127.0.0.4", r)
				checkRFCAnswerH2(t, s, h2ClientFrom(s, "127.0.0.4"), r)
				return
			}
		}
		t.Fatal("no 429 after 100 requests in a row, with a limit of 60")
	})

	// A gateway that outlives its server answers for it. Co-located, the
	// server's death takes its gateway with it: that is the "no gateway"
	// case below, so this one exists only with separate gateways.
	if !s.colocated() {
		t.Run("no gRPC server", func(t *testing.T) {
			server := s.Process("server-1")
			if err := server.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-server.Done()
			r := withKey(rfcRequest{method: "GET", target: "/v1/codename", status: 503, message: "cannot be reached"})
			checkRFCAnswerH1(t, s, "127.0.0.5", r)
			checkRFCAnswerH2(t, s, h2ClientFrom(s, "127.0.0.5"), r)
		})
	}

	t.Run("no gateway", func(t *testing.T) {
		gw := s.restProcess(t, 1)
		if err := gw.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-gw.Done()
		r := withKey(rfcRequest{method: "GET", target: "/v1/codename", status: 503, message: "no server is available"})
		// HAProxy answers with its own 503 once its checks have marked the
		// gateway down. Wait on the stats page, not by asking: asking
		// every 10 ms spends the address's share of requests, and on a
		// busy machine the checks take longer than that share lasts.
		if _, ok := poll.Until(20*time.Second, func() bool {
			for _, row := range s.statsRows(t) {
				if row["pxname"] == "be_rest" && row["svname"] == "BACKEND" {
					return row["status"] == "DOWN"
				}
			}
			t.Fatal("no be_rest backend on HAProxy's stats page")
			return false
		}); !ok {
			t.Fatal("HAProxy never marked the killed gateway down")
		}
		checkRFCAnswerH1(t, s, "127.0.0.6", r)
		checkRFCAnswerH2(t, s, h2ClientFrom(s, "127.0.0.6"), r)
	})
}

// rawH1From sends r over HTTP/1.1 from the local address from on a new
// connection, and returns the answer, its body, and its status line as it
// came (http.ReadResponse makes up a reason phrase when there is none).
func rawH1From(from, addr string, r rfcRequest) (*http.Response, []byte, string, error) {
	conn, err := dialFrom(from, addr)
	if err != nil {
		return nil, nil, "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var req bytes.Buffer
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n", r.method, r.target)
	for i := 0; i+1 < len(r.header); i += 2 {
		fmt.Fprintf(&req, "%s: %s\r\n", r.header[i], r.header[i+1])
	}
	fmt.Fprintf(&req, "Content-Length: %d\r\n\r\n%s", len(r.body), r.body)
	if _, err := conn.Write(req.Bytes()); err != nil {
		return nil, nil, "", err
	}
	raw, err := io.ReadAll(conn)
	if err != nil && len(raw) == 0 {
		return nil, nil, "", err
	}
	line, _, _ := bytes.Cut(raw, []byte("\n"))
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err != nil {
		return nil, nil, "", fmt.Errorf("%w in %q", err, raw)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, "", fmt.Errorf("read body: %w in %q", err, raw)
	}
	return resp, body, string(line) + "\n", nil
}

func checkRFCAnswerH1(t *testing.T, s *system, from string, r rfcRequest) {
	t.Helper()
	resp, body, line, err := rawH1From(from, s.cfg.HTTPAddr, r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.target, err)
	}
	if m := statusLine.FindStringSubmatch(line); m == nil || m[1] != fmt.Sprint(r.status) || strings.TrimSpace(m[2]) == "" {
		t.Errorf("%s %s: status line %q, want HTTP/1.1 %d with a reason phrase", r.method, r.target, line, r.status)
	}
	checkRFCAnswer(t, r, resp, body)
}

func checkRFCAnswerH2(t *testing.T, s *system, c *http.Client, r rfcRequest) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.method, s.httpsURL(r.target), strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(r.header); i += 2 {
		req.Header.Set(r.header[i], r.header[i+1])
	}
	resp, body := doRead(t, c, req)
	if resp.ProtoMajor != 2 {
		t.Errorf("answered over %s, want HTTP/2", resp.Proto)
	}
	if resp.StatusCode != r.status {
		t.Errorf("%s %s: status %d, want %d; body %s", r.method, r.target, resp.StatusCode, r.status, body)
	}
	checkRFCAnswer(t, r, resp, []byte(body))
}

// checkRFCAnswer checks what HTTP/1.1 and HTTP/2 answers share: the JSON
// error shape with the code of the status, compact, and Allow on a 405.
func checkRFCAnswer(t *testing.T, r rfcRequest, resp *http.Response, body []byte) {
	t.Helper()
	if got := resp.Header.Get("Allow"); got != r.allow {
		t.Errorf("%s %s: Allow %q, want %q", r.method, r.target, got, r.allow)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: content type %q, want application/json", r.method, r.target, ct)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, body); err != nil || !bytes.Equal(compact.Bytes(), body) {
		t.Errorf("%s %s: body %q is not compact JSON (%v)", r.method, r.target, body, err)
	}
	if r.status == http.StatusOK {
		if !strings.HasPrefix(string(body), `{"name":"`) {
			t.Errorf("%s %s: body %s, want a name", r.method, r.target, body)
		}
		return
	}
	var e errorBody
	if err := json.Unmarshal(body, &e); err != nil || e.Details == nil {
		t.Fatalf("%s %s: body %q is not the JSON error shape (%v)", r.method, r.target, body, err)
	}
	want, ok := rfcCode[r.status]
	if !ok {
		t.Fatalf("no code known for status %d", r.status)
	}
	if e.Code != int(want) {
		t.Errorf("%s %s: status %d with code %d, want %d (%v)", r.method, r.target, r.status, e.Code, want, want)
	}
	// Where grpc-gateway maps a code to this status, it is that code.
	switch r.status {
	case http.StatusMethodNotAllowed, http.StatusNotAcceptable, http.StatusRequestEntityTooLarge:
	default:
		if got := runtime.HTTPStatusFromCode(codes.Code(e.Code)); got != r.status {
			t.Errorf("%s %s: code %d maps to status %d, not %d", r.method, r.target, e.Code, got, r.status)
		}
	}
	if !strings.Contains(e.Message, r.message) {
		t.Errorf("%s %s: message %q, want it to hold %q", r.method, r.target, e.Message, r.message)
	}
}

// h2ClientFrom is an HTTP/2 client over TLS, trusting the stack's CA,
// whose connections come from the local address from.
func h2ClientFrom(s *system, from string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	return &http.Client{Transport: &http.Transport{
		ForceAttemptHTTP2: true,
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return (&tls.Dialer{NetDialer: d, Config: s.tlsConfig("h2")}).DialContext(ctx, network, addr)
		},
	}}
}
