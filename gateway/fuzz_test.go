package gateway_test

// Fuzz targets for everything the gateway parses from a client:
//
//	FuzzUnaryJSON         the body of POST /v1/codename
//	FuzzUnaryQuery        the query of GET /v1/codename
//	FuzzUnaryHeader       one request header on GET /v1/codename
//	FuzzStreamJSON        the body of POST /v1/codenames:stream, over HTTP/1.1 and HTTP/2
//	FuzzWebSocketMessage  the first message on the WebSocket bridge
//	FuzzSSEQuery          the query of GET /v1/codenames:stream as Server-Sent Events
//
// Each one drives the real handler (gateway.New over a gRPC connection to
// server.Serve on bufconn, built once per target) and checks the response
// against what the input should get. `go test` runs the seeds in
// testdata/fuzz/<target>/ as ordinary tests; to fuzz one target for a few
// minutes (one at a time: -fuzz takes a single target):
//
//	go test ./gateway -run '^$' -fuzz '^FuzzStreamJSON$' -fuzztime 2m -fuzzminimizetime 5s
//
// Without -fuzzminimizetime the fuzzer may spend a minute shrinking each new
// input it finds interesting, one HTTP request per attempt, and fuzz little.
// A failing input is written to testdata/fuzz/<target>/; commit it with the
// fix, so that it stays a test.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/gateway"
	"github.com/codename-gateway/codename-gateway/server"
	"github.com/codename-gateway/codename-gateway/server/codename"
)

// fuzzTimeout bounds each request of a fuzz input: everything here answers
// in milliseconds, so taking longer is a hang.
const fuzzTimeout = 2 * time.Second

// fuzzInterval is the pause between codenames on a stream: short, so that a
// stream input costs a few milliseconds.
const fuzzInterval = time.Millisecond

func FuzzUnaryJSON(f *testing.F) {
	g := newFuzzGateway(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		ctx, cancel := context.WithTimeout(t.Context(), fuzzTimeout)
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/codename", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := g.serve(t, req)
		checkUnary(t, rec.Code, rec.Header(), rec.Body.Bytes(), expectUnaryJSON(body))
	})
}

func FuzzUnaryQuery(f *testing.F) {
	g := newFuzzGateway(f)
	f.Fuzz(func(t *testing.T, query string) {
		u, err := url.ParseRequestURI("/v1/codename?" + query)
		if err != nil {
			t.Skip("net/http refuses this request target before any handler sees it")
		}
		ctx, cancel := context.WithTimeout(t.Context(), fuzzTimeout)
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/v1/codename", nil)
		req.URL, req.RequestURI = u, u.RequestURI()
		rec := g.serve(t, req)
		checkUnary(t, rec.Code, rec.Header(), rec.Body.Bytes(), expectUnaryQuery(u.RawQuery))
	})
}

func FuzzUnaryHeader(f *testing.F) {
	g := newFuzzGateway(f)
	f.Fuzz(func(t *testing.T, name, value string) {
		if !validHeaderName(name) || !validHeaderValue(value) {
			t.Skip("net/http refuses this header before any handler sees it")
		}
		key := http.CanonicalHeaderKey(name)
		switch key {
		case "Host", "Content-Length", "Transfer-Encoding", "Expect", "Connection", "Keep-Alive",
			"Proxy-Connection", "Te", "Trailer", "Upgrade":
			t.Skip("framing and hop-by-hop headers are net/http's and HAProxy's business")
		}
		ctx, cancel := context.WithTimeout(t.Context(), fuzzTimeout)
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/v1/codename?category=space", nil)
		// net/http trims the value's surrounding blanks as it parses it.
		req.Header.Set(key, strings.Trim(value, " \t"))
		want := unaryWant{status: http.StatusOK, category: "space"}
		rec := g.serve(t, req)
		if key == "Grpc-Timeout" {
			// A client may set its own deadline: a malformed one is a 400,
			// one too short to meet a 504.
			switch rec.Code {
			case http.StatusBadRequest:
				want = unaryWant{status: http.StatusBadRequest, message: "invalid grpc-timeout"}
			case http.StatusGatewayTimeout:
				want = unaryWant{status: http.StatusGatewayTimeout}
			}
		}
		checkUnary(t, rec.Code, rec.Header(), rec.Body.Bytes(), want)
	})
}

func FuzzStreamJSON(f *testing.F) {
	g := newFuzzGateway(f)
	h1, h2 := g.httpServer(f, false), g.httpServer(f, true)
	f.Fuzz(func(t *testing.T, body []byte, http2 bool) {
		ts := h1
		if http2 {
			ts = h2
		}
		defer g.settle(t, ts)
		want := expectStream(body)
		ctx, cancel := context.WithTimeout(t.Context(), fuzzTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/v1/codenames:stream", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := ts.Client().Do(req)
		if err != nil {
			if len(body) > 64<<10 {
				t.Skip("the server may close the connection on a long body it stopped reading")
			}
			t.Fatalf("POST: %v", err)
		}
		defer resp.Body.Close()
		if http2 && resp.ProtoMajor != 2 {
			t.Fatalf("response is %s, want HTTP/2", resp.Proto)
		}
		checkStream(t, resp, want)
	})
}

func FuzzWebSocketMessage(f *testing.F) {
	g := newFuzzGateway(f)
	ts := g.httpServer(f, false)
	f.Fuzz(func(t *testing.T, msg []byte) {
		defer g.settle(t, ts)
		ctx, cancel := context.WithTimeout(t.Context(), fuzzTimeout)
		defer cancel()
		conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/v1/codenames:stream", nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer conn.CloseNow()
		if err := conn.Write(ctx, websocket.MessageText, msg); err != nil {
			t.Fatalf("write: %v", err)
		}
		typ, data, err := conn.Read(ctx)
		if len(msg) > maxBodyBytes {
			// coder/websocket enforces the read limit itself, with a close
			// frame and no message.
			if got := websocket.CloseStatus(err); got != websocket.StatusMessageTooBig {
				t.Fatalf("message of %d bytes over a limit of %d: got %v %q, %v; want close status %v",
					len(msg), maxBodyBytes, typ, data, err, websocket.StatusMessageTooBig)
			}
			return
		}
		if err != nil {
			t.Fatalf("read the first message: %v", err)
		}
		if typ != websocket.MessageText {
			t.Errorf("first message is %v, want text", typ)
		}
		want := expectMessages([][]byte{msg})
		line := checkLine(t, data, want.categories, want)
		if line.err == nil {
			if err := conn.Close(websocket.StatusNormalClosure, ""); err != nil {
				t.Errorf("close: %v", err)
			}
			return
		}
		// The error is the last message, and the close code says that
		// reconnecting with the same request will not help.
		typ, data, err = conn.Read(ctx)
		if got := websocket.CloseStatus(err); got != websocket.StatusPolicyViolation {
			t.Errorf("after the error: got %v %q, %v; want close status %v", typ, data, err, websocket.StatusPolicyViolation)
		}
	})
}

func FuzzSSEQuery(f *testing.F) {
	g := newFuzzGateway(f)
	ts := g.httpServer(f, false)
	f.Fuzz(func(t *testing.T, query string) {
		u, err := url.ParseRequestURI("/v1/codenames:stream?" + query)
		if err != nil || strings.ContainsAny(query, " #") {
			t.Skip("not a request target an HTTP/1.1 client can send")
		}
		defer g.settle(t, ts)
		want := expectSSE(u.Query().Get("category"))
		ctx, cancel := context.WithTimeout(t.Context(), fuzzTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+u.RequestURI(), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", "text/event-stream")
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		defer resp.Body.Close()
		if refused, ok := expectStreamQuery(u.RawQuery); !ok {
			// Refused before the event stream begins, like a body too
			// large: a query that is not the stream's is a mistake in the
			// program that sent it, not news for an EventSource.
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("read body: %v", err)
			}
			checkUnary(t, resp.StatusCode, resp.Header, body, refused)
			return
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d, want 200: EventSource hides every other status", resp.StatusCode)
		}
		if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
			t.Fatalf("content type = %q, want text/event-stream", mt)
		}
		r := bufio.NewReader(resp.Body)
		if name, data, err := readEvent(r); err != nil || name != "" || data != "" {
			t.Fatalf("first block: event %q, data %q, %v; want the retry: field alone", name, data, err)
		}
		name, data, err := readEvent(r)
		if err != nil {
			t.Fatalf("read the first event: %v", err)
		}
		line := checkLine(t, []byte(data), want.categories, want)
		if wantName := map[bool]string{true: "error", false: ""}[line.err != nil]; name != wantName {
			t.Errorf("event name = %q, want %q for data %s", name, wantName, data)
		}
		if line.err != nil {
			if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
				t.Errorf("response goes on after the error event (%v), want it to end", err)
			}
		}
	})
}

// fuzzGateway is the system a fuzz target runs against: server.Serve on an
// in-memory listener and the gateway's handler over a connection to it.
// Handlers and server connections are counted, so that each input can check
// it left nothing running.
type fuzzGateway struct {
	h    http.Handler
	busy *busy
	logs *lineLog // what the HTTP servers log: recovered panics, mostly
}

func newFuzzGateway(f *testing.F) *fuzzGateway {
	f.Helper()
	conn, _ := serveCodenames(f, server.Config{
		StreamInterval: fuzzInterval,
		DrainTimeout:   time.Second,
		// As in production, the server takes messages as large as the
		// gateway's body bound, and no larger.
		MaxRecvMsgSize: maxBodyBytes,
	})
	h := newGateway(f, conn, gateway.Options{MaxBodyBytes: maxBodyBytes})
	g := &fuzzGateway{busy: newBusy(), logs: new(lineLog)}
	g.h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.busy.add(1)
		defer g.busy.add(-1)
		h.ServeHTTP(w, r)
	})
	return g
}

// serve runs a unary request through the handler and fails the test if the
// handler panics or outlives the request's context.
func (g *fuzzGateway) serve(t *testing.T, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	done := make(chan any, 1)
	go func() {
		defer func() { done <- recover() }()
		g.h.ServeHTTP(rec, req)
	}()
	select {
	case p := <-done:
		if p != nil {
			t.Fatalf("handler panicked: %v", p)
		}
	case <-time.After(fuzzTimeout + time.Second):
		t.Fatalf("handler still running %v after the request began", fuzzTimeout+time.Second)
	}
	return rec
}

// httpServer serves the handler over HTTP/1.1, or over HTTP/2 with TLS.
// Idle connections count as busy on HTTP/1.1, so that settle waits for
// them to close and sees what the server does between requests.
func (g *fuzzGateway) httpServer(f *testing.F, http2 bool) *httptest.Server {
	f.Helper()
	ts := httptest.NewUnstartedServer(g.h)
	ts.Config.ErrorLog = log.New(g.logs, "", 0)
	var mu sync.Mutex
	states := make(map[net.Conn]http.ConnState)
	busyIn := func(s http.ConnState) bool {
		return s == http.StateNew || s == http.StateActive || (s == http.StateIdle && !http2)
	}
	ts.Config.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		was, seen := states[c]
		switch {
		case (!seen || !busyIn(was)) && busyIn(s):
			g.busy.add(1)
		case seen && busyIn(was) && !busyIn(s):
			g.busy.add(-1)
		}
		states[c] = s
		if s == http.StateClosed || s == http.StateHijacked {
			delete(states, c)
		}
	}
	if http2 {
		ts.EnableHTTP2 = true
		ts.StartTLS()
	} else {
		ts.Start()
	}
	f.Cleanup(ts.Close)
	return ts
}

// settle ends an input on ts: it closes the client's idle connections and
// waits until no handler runs and no server connection is open (idle HTTP/2
// ones aside), then fails the test if the server logged anything meanwhile.
func (g *fuzzGateway) settle(t *testing.T, ts *httptest.Server) {
	t.Helper()
	if !ts.EnableHTTP2 {
		ts.Client().CloseIdleConnections()
	}
	if !g.busy.wait(fuzzTimeout) {
		t.Errorf("handlers or connections still busy %v after the input ended", fuzzTimeout)
	}
	for _, line := range g.logs.take() {
		t.Errorf("HTTP server logged: %s", line)
	}
}

// busy counts running handlers and busy connections.
type busy struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed while n is zero
}

func newBusy() *busy {
	b := &busy{idle: make(chan struct{})}
	close(b.idle)
	return b
}

func (b *busy) add(d int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	was := b.n
	b.n += d
	switch {
	case was == 0 && b.n > 0:
		b.idle = make(chan struct{})
	case was > 0 && b.n == 0:
		close(b.idle)
	}
}

func (b *busy) wait(timeout time.Duration) bool {
	b.mu.Lock()
	idle := b.idle
	b.mu.Unlock()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-idle:
		return true
	case <-timer.C:
		return false
	}
}

// lineLog keeps what a log.Logger writes to it.
type lineLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// The first line says what happened; a recovered panic's stack follows.
	first, _, _ := strings.Cut(string(p), "\n")
	l.lines = append(l.lines, first)
	return len(p), nil
}

func (l *lineLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := l.lines
	l.lines = nil
	return lines
}

// unaryWant is what a unary request should get.
type unaryWant struct {
	status   int
	category string // with 200: the category the name must come from
	message  string // with an error: text its message must contain
}

// expectUnaryJSON predicts the answer to a POST /v1/codename body from
// encoding/json, protojson and the codename package.
func expectUnaryJSON(body []byte) unaryWant {
	switch {
	case len(body) > maxBodyBytes:
		return unaryWant{status: http.StatusRequestEntityTooLarge, message: fmt.Sprintf("request body is larger than %d bytes", maxBodyBytes)}
	case len(bytes.Trim(body, " \t\r\n")) == 0:
		return unaryWant{status: http.StatusOK, category: codename.Default}
	case !json.Valid(body):
		return unaryWant{status: http.StatusBadRequest, message: "request body "}
	}
	req := new(codenamev1.NameRequest)
	if err := protojson.Unmarshal(body, req); err != nil {
		return unaryWant{status: http.StatusBadRequest, message: "proto:"}
	}
	return expectCategory(req.GetCategory())
}

// expectUnaryQuery predicts the answer to GET /v1/codename?query: category
// is the one parameter it takes.
func expectUnaryQuery(query string) unaryWant {
	if len(query) > maxBodyBytes {
		return unaryWant{status: http.StatusRequestURITooLong, message: fmt.Sprintf("query is longer than %d bytes", maxBodyBytes)}
	}
	values, err := url.ParseQuery(query)
	if err != nil {
		return unaryWant{status: http.StatusBadRequest, message: "query is malformed"}
	}
	for k, vs := range values {
		for _, s := range append(vs, k) {
			if !utf8.ValidString(s) {
				return unaryWant{status: http.StatusBadRequest, message: "UTF-8"}
			}
		}
	}
	for k := range values {
		if k != "category" {
			return unaryWant{status: http.StatusBadRequest, message: "unknown query parameter"}
		}
	}
	switch vs := values["category"]; len(vs) {
	case 0:
		return unaryWant{status: http.StatusOK, category: codename.Default}
	case 1:
		return expectCategory(vs[0])
	default:
		return unaryWant{status: http.StatusBadRequest, message: "too many values"}
	}
}

func expectCategory(s string) unaryWant {
	c, err := codename.Parse(s)
	if err != nil {
		return unaryWant{status: http.StatusBadRequest, message: "unknown category"}
	}
	return unaryWant{status: http.StatusOK, category: c.Name()}
}

// checkUnary checks a unary response: 200 with {"name":...} of the wanted
// category, or the wanted 4xx with the JSON error shape and the gRPC code
// that goes with that HTTP status. A zero want takes any 200 name or 400.
func checkUnary(t *testing.T, code int, header http.Header, body []byte, want unaryWant) {
	t.Helper()
	if mt, _, _ := mime.ParseMediaType(header.Get("Content-Type")); mt != "application/json" {
		t.Errorf("content type = %q, want application/json", mt)
	}
	if want.status == 0 && (code == http.StatusOK || code == http.StatusBadRequest) {
		want.status = code
	}
	if code != want.status {
		t.Fatalf("status = %d, want %d; body:\n%s", code, want.status, body)
	}
	if code == http.StatusOK {
		name, err := parseResult(body)
		if err != nil {
			t.Fatalf("200 body: %v\n%s", err, body)
		}
		checkName(t, name, want.category)
		return
	}
	st, err := parseStatus(body)
	if err != nil {
		t.Fatalf("%d body: %v\n%s", code, err, body)
	}
	if wantCode, ok := grpcCodeFor[code]; !ok || st.Code != wantCode {
		t.Errorf("status %d with code %v, want %v", code, st.Code, wantCode)
	}
	if !strings.Contains(st.Message, want.message) {
		t.Errorf("message %q does not contain %q", st.Message, want.message)
	}
}

// grpcCodeFor is the gRPC code in the error body of each HTTP status the
// gateway may answer a client's mistake with: the code whose
// runtime.HTTPStatusFromCode is that status, or, for the statuses no code
// maps to, the nearest (see codeOfStatus in codes.go).
var grpcCodeFor = map[int]codes.Code{
	http.StatusBadRequest:            codes.InvalidArgument,
	http.StatusRequestEntityTooLarge: codes.ResourceExhausted,
	http.StatusRequestURITooLong:     codes.ResourceExhausted,
	http.StatusNotFound:              codes.NotFound,
	http.StatusMethodNotAllowed:      codes.Unimplemented,
	http.StatusNotAcceptable:         codes.Unimplemented,
	http.StatusGatewayTimeout:        codes.DeadlineExceeded,
}

// checkName checks that name is a codename, of category if that is not "".
func checkName(t *testing.T, name, category string) {
	t.Helper()
	got := codename.CategoryOf(name)
	if got == "" || (category != "" && got != category) {
		t.Errorf("got name %q of category %q, want one of category %q", name, got, category)
	}
}

// streamWant is what a stream request should get, from a model of the
// gateway's request decoder and the server.
type streamWant struct {
	// categories are those of the messages before the first mistake, or
	// the default if the body holds no message: the names' categories.
	categories []string
	// fails is set when a mistake must end the stream with an error.
	fails bool
	// The error messages that may end it: a message the gateway cannot
	// decode, an unknown category, a category that is not UTF-8, or
	// (unknowable in advance, since the gateway's bound is approximate) a
	// message over the size bound.
	decodeError, unknownCategory, notUTF8, tooLarge bool
}

func (w streamWant) allows(message string) bool {
	switch {
	case strings.HasPrefix(message, "request stream: request message is larger than"):
		return w.tooLarge || w.decodeError
	case strings.HasPrefix(message, "request stream: "):
		return w.decodeError
	case strings.HasPrefix(message, "unknown category "):
		return w.unknownCategory
	case strings.Contains(message, "not valid UTF-8"):
		return w.notUTF8
	}
	return false
}

// expectStream models how the gateway splits a stream body into messages:
// encoding/json's Decoder, then protojson for each value. The gateway stops
// at the first value it cannot decode; the server stops at the first unknown
// category, by which time the gateway may have found a later mistake.
func expectStream(body []byte) streamWant {
	var w streamWant
	dec := json.NewDecoder(bytes.NewReader(body))
	var prev int64
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		end := dec.InputOffset()
		if err != nil {
			end = int64(len(body))
		}
		// The gateway refuses a message once it has read more than
		// maxBodyBytes for it, which needs a stretch of the body (blanks
		// before a value count) at least that long.
		if end-prev > maxBodyBytes {
			w.tooLarge = true
		}
		prev = end
		if errors.Is(err, io.EOF) {
			break
		}
		req := new(codenamev1.NameRequest)
		if err == nil {
			err = protojson.Unmarshal(raw, req)
		}
		if err != nil {
			w.fails, w.decodeError = true, true
			break
		}
		c, err := codename.Parse(req.GetCategory())
		if err != nil {
			w.fails, w.unknownCategory = true, true
			continue
		}
		if !w.fails {
			w.categories = append(w.categories, c.Name())
		}
	}
	if len(w.categories) == 0 && !w.fails {
		w.categories = []string{codename.Default}
	}
	return w
}

// expectMessages models a stream whose messages the client sends one by
// one, as over a WebSocket.
func expectMessages(msgs [][]byte) streamWant {
	var w streamWant
	for _, m := range msgs {
		req := new(codenamev1.NameRequest)
		if err := protojson.Unmarshal(m, req); err != nil {
			w.fails, w.decodeError = true, true
			return w
		}
		c, err := codename.Parse(req.GetCategory())
		if err != nil {
			w.fails, w.unknownCategory = true, true
			return w
		}
		w.categories = append(w.categories, c.Name())
	}
	return w
}

// expectSSE models the Server-Sent Events stream of one category.
// expectStreamQuery predicts whether GET /v1/codenames:stream?query is
// refused before the stream begins, and how: when it is too long, does not
// parse, or has a parameter other than category. The stream itself reports
// a category that is not UTF-8.
func expectStreamQuery(query string) (unaryWant, bool) {
	if len(query) > maxBodyBytes {
		return unaryWant{status: http.StatusRequestURITooLong, message: "query is longer than"}, false
	}
	values, err := url.ParseQuery(query)
	if err != nil {
		return unaryWant{status: http.StatusBadRequest, message: "query is malformed"}, false
	}
	for k := range values {
		if k != "category" {
			return unaryWant{status: http.StatusBadRequest, message: "unknown query parameter"}, false
		}
	}
	return unaryWant{}, true
}

func expectSSE(category string) streamWant {
	if !utf8.ValidString(category) {
		return streamWant{fails: true, notUTF8: true}
	}
	c, err := codename.Parse(category)
	if err != nil {
		return streamWant{fails: true, unknownCategory: true}
	}
	return streamWant{categories: []string{c.Name()}}
}

// streamLineOf is one parsed line of a stream: a name or an error.
type streamLineOf struct {
	name string
	err  *rpcStatus
}

// checkLine checks that data is {"result":{"name":...}} with a name of one
// of categories, or {"error":{...}} with code 3 and a message want allows.
func checkLine(t *testing.T, data []byte, categories []string, want streamWant) streamLineOf {
	t.Helper()
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || len(obj) != 1 {
		t.Fatalf("line %s is not a JSON object with one member (%v)", data, err)
	}
	if raw, ok := obj["result"]; ok {
		name, err := parseResult(raw)
		if err != nil {
			t.Fatalf("line %s: %v", data, err)
		}
		if c := codename.CategoryOf(name); !slices.Contains(categories, c) {
			t.Errorf("got name %q of category %q, want one of %q (%+v)", name, c, categories, want)
		}
		return streamLineOf{name: name}
	}
	raw, ok := obj["error"]
	if !ok {
		t.Fatalf("line %s has neither result nor error", data)
	}
	st, err := parseStatus(raw)
	if err != nil {
		t.Fatalf("line %s: %v", data, err)
	}
	if st.Code != codes.InvalidArgument || !want.allows(st.Message) {
		t.Errorf("error %s, want code 3 and a message for one of %+v", data, want)
	}
	return streamLineOf{err: st}
}

// checkStream reads a stream response: names of the wanted categories, the
// first one of the first category, then, if the input has a mistake, one
// error line that ends the response. The status is 400 when the error is the
// first line, 200 otherwise.
func checkStream(t *testing.T, resp *http.Response, want streamWant) {
	t.Helper()
	r := bufio.NewReader(resp.Body)
	var lines []streamLineOf
	for {
		data, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatalf("after %d lines: %v; want 3 names or an error line (%+v)", len(lines), err, want)
		}
		line := checkLine(t, bytes.TrimSuffix(data, []byte("\n")), want.categories, want)
		if len(lines) == 0 {
			wantStatus := http.StatusOK
			if line.err != nil {
				wantStatus = http.StatusBadRequest
			}
			if resp.StatusCode != wantStatus {
				t.Errorf("status = %d, want %d with a first line %s", resp.StatusCode, wantStatus, data)
			}
			if line.err == nil && line.name != "" {
				if c := codename.CategoryOf(line.name); c != want.categories[0] {
					t.Errorf("first name %q is of category %q, want %q", line.name, c, want.categories[0])
				}
			}
		}
		lines = append(lines, line)
		if line.err != nil {
			if rest, err := r.ReadBytes('\n'); len(rest) > 0 || !errors.Is(err, io.EOF) {
				t.Errorf("after the error line: %q, %v; want the response to end", rest, err)
			}
			return
		}
		if len(lines) >= 3 && !want.fails {
			return
		}
	}
}

// readEvent reads one Server-Sent Event, up to its blank line, and returns
// its event name and data.
func readEvent(r *bufio.Reader) (name, data string, err error) {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return name, data, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			return name, data, nil
		}
		field, value, _ := strings.Cut(line, ": ")
		switch field {
		case "event":
			name = value
		case "data":
			data += value
		case "retry":
		default:
			return name, data, fmt.Errorf("unexpected field in %q", line)
		}
	}
}

// rpcStatus is the gateway's JSON error shape, a google.rpc.Status.
type rpcStatus struct {
	Code    codes.Code
	Message string
}

// parseStatus parses {"code":N,"message":"...","details":[...]} and nothing
// else, with a message that says something.
func parseStatus(data []byte) (*rpcStatus, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	var (
		code    *int
		message *string
		details *[]json.RawMessage
	)
	for key, dst := range map[string]any{"code": &code, "message": &message, "details": &details} {
		raw, ok := obj[key]
		if !ok {
			return nil, fmt.Errorf("error has no %q", key)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return nil, fmt.Errorf("error's %q: %v", key, err)
		}
	}
	switch {
	case len(obj) != 3:
		return nil, errors.New("error has members beyond code, message and details")
	case code == nil || message == nil || details == nil:
		return nil, errors.New("error has a null member")
	case strings.TrimSpace(*message) == "":
		return nil, errors.New("error message is empty")
	}
	return &rpcStatus{Code: codes.Code(*code), Message: *message}, nil
}

// parseResult parses {"name":"..."} and nothing else.
func parseResult(data []byte) (string, error) {
	var res struct {
		Name *string `json:"name"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		return "", fmt.Errorf("not {\"name\":...}: %v", err)
	}
	if res.Name == nil {
		return "", errors.New("no name")
	}
	return *res.Name, nil
}

// validHeaderName and validHeaderValue are net/http's rules for what it
// accepts in a request (httpguts.ValidHeaderFieldName and ...Value).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || c <= ' ' || c == 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
