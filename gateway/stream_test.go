package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// restStream is an open POST /v1/codenames:stream whose request body the
// test writes to while it reads the response.
type restStream struct {
	t     *testing.T
	proto int // the HTTP major version the server speaks
	ctx   context.Context
	body  *io.PipeWriter
	done  chan struct{}  // closed once the client has the response headers, or failed
	resp  *http.Response // set before done is closed
	err   error          // likewise
	lines chan string    // closed when the response ends
	// readLines starts the goroutine that feeds lines.
	readLines sync.Once
}

// startStreamServer serves the gateway over HTTP/2, which is full-duplex:
// the client reads the response while it still writes the request body.
func startStreamServer(t *testing.T) *httptest.Server {
	t.Helper()
	h, _ := startGateway(t)
	return serveHTTP2(t, h)
}

// openRESTStream starts a stream on ts and, unless first is empty, writes
// it to the body. The stream ends with the test, or after waitTimeout.
func openRESTStream(t *testing.T, ts *httptest.Server, first string) *restStream {
	t.Helper()
	proto := 1
	if ts.EnableHTTP2 {
		proto = 2
	}
	return openRESTStreamAt(t, ts.Client(), ts.URL, proto, first)
}

// openRESTStreamAt is openRESTStream through c to the server at base,
// which answers in HTTP/proto.
func openRESTStreamAt(t *testing.T, c *http.Client, base string, proto int, first string) *restStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/codenames:stream", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	s := &restStream{t: t, proto: proto, ctx: ctx, body: pw, done: make(chan struct{}), lines: make(chan string)}
	go func() {
		defer close(s.done)
		s.resp, s.err = c.Do(req)
	}()
	t.Cleanup(func() {
		cancel()
		_ = pw.Close()
		<-s.done
		if s.resp != nil {
			_ = s.resp.Body.Close()
		}
	})
	if first != "" {
		s.write(first)
	}
	return s
}

// response waits for the response headers. The gateway sends them with
// the first line, so the first request must have been written (or the body
// closed) before.
func (s *restStream) response() *http.Response {
	s.t.Helper()
	select {
	case <-s.done:
	case <-time.After(waitTimeout):
		s.t.Fatal("no response headers within the timeout")
	}
	if s.err != nil {
		s.t.Fatalf("POST: %v", s.err)
	}
	if s.resp.ProtoMajor != s.proto {
		s.t.Fatalf("response is %s, want HTTP/%d", s.resp.Proto, s.proto)
	}
	return s.resp
}

// checkResponse checks the response's status, and that it is NDJSON.
func (s *restStream) checkResponse(wantStatus int) {
	s.t.Helper()
	resp := s.response()
	if resp.StatusCode != wantStatus {
		s.t.Errorf("status = %d, want %d", resp.StatusCode, wantStatus)
	}
	if got, want := resp.Header.Get("Content-Type"), "application/x-ndjson"; got != want {
		s.t.Errorf("Content-Type = %q, want %q", got, want)
	}
}

// closeBody ends the request body, a half-close.
func (s *restStream) closeBody() {
	s.t.Helper()
	if err := s.body.Close(); err != nil {
		s.t.Fatalf("close body: %v", err)
	}
}

// write writes to the request body, failing the test if the gateway does
// not take it within the timeout.
func (s *restStream) write(data string) {
	s.t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := io.WriteString(s.body, data)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			s.t.Fatalf("write %q: %v", data, err)
		}
	case <-time.After(waitTimeout):
		s.t.Fatalf("write %q: not taken within the timeout", data)
	}
}

// next returns the next line of the response, or ok false once it ends.
func (s *restStream) next() (line streamLine, raw string, ok bool) {
	s.t.Helper()
	s.readLines.Do(func() {
		body := s.response().Body
		go func() {
			defer close(s.lines)
			sc := bufio.NewScanner(body)
			for sc.Scan() {
				select {
				case s.lines <- sc.Text():
				case <-s.ctx.Done():
					return
				}
			}
		}()
	})
	select {
	case raw, ok = <-s.lines:
		if !ok {
			return streamLine{}, "", false
		}
	case <-time.After(waitTimeout):
		s.t.Fatal("no line within the timeout")
	}
	if err := json.Unmarshal([]byte(raw), &line); err != nil {
		s.t.Fatalf("line is not JSON: %v\n%s", err, raw)
	}
	return line, raw, true
}

func TestStream(t *testing.T) {
	ts := startStreamServer(t)
	s := openRESTStream(t, ts, `{"category":"animals"}`)
	s.checkResponse(http.StatusOK)
	wantNames(t, s, "animals", 2)
	s.write(`{"category":"science"}`)
	switchTo(t, s, "animals", "science", 2)
	s.write(`{"category": nope}`)
	endsWithError(t, s, 3, "request stream: invalid character")
}

// TestStreamHTTP1 checks that the stream is full-duplex over HTTP/1.1 too,
// so that a category sent after the first name still takes effect.
func TestStreamHTTP1(t *testing.T) {
	ts, _ := serveGateway(t)
	s := openRESTStream(t, ts, `{"category":"animals"}`)
	s.checkResponse(http.StatusOK)
	wantNames(t, s, "animals", 1)
	s.write(`{"category":"space"}`)
	switchTo(t, s, "animals", "space", 2)
	s.closeBody()
	switchTo(t, s, "space", "space", 2)
}

// TestStreamHalfClose checks that closing the request body is a half-close:
// names of the last category, or of the default if none was sent, keep
// coming.
func TestStreamHalfClose(t *testing.T) {
	ts := startStreamServer(t)
	tests := []struct {
		name  string
		first string
		want  string
	}{
		{name: "after a category", first: "{\"category\":\"space\"}\n", want: "space"},
		{name: "with no request", first: "", want: "animals"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openRESTStream(t, ts, tt.first)
			s.closeBody()
			wantNames(t, s, tt.want, 3)
		})
	}
}

func TestStreamErrors(t *testing.T) {
	ts := startStreamServer(t)
	tests := []struct {
		name        string
		write       string
		wantMessage string
	}{
		{name: "unknown category", write: `{"category":"plants"}`,
			wantMessage: `unknown category "plants": valid categories are animals, science, space`},
		{name: "malformed json", write: `{"category": nope}`, wantMessage: "request stream: invalid character"},
		{name: "unknown field", write: `{"categroy":"space"}`, wantMessage: `"categroy"`},
		{name: "message over the limit", write: `{"category":"` + strings.Repeat("a", 4*maxBodyBytes),
			wantMessage: "request stream: request message is larger than 1024 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openRESTStream(t, ts, `{"category":"space"}`)
			wantNames(t, s, "space", 1)
			s.write(tt.write)
			endsWithError(t, s, 3, tt.wantMessage)
		})
	}
}

// TestStreamUnknownFirstCategory checks that a stream refused before its
// first name gets the error's HTTP status as well as the error line, which
// is a stream of one line.
func TestStreamUnknownFirstCategory(t *testing.T) {
	ts := startStreamServer(t)
	s := openRESTStream(t, ts, `{"category":"plants"}`)
	s.checkResponse(http.StatusBadRequest)
	endsWithError(t, s, 3, `unknown category "plants"`)
}

// watchedBody is a request body that notes whether a Read was in progress
// when the handler returned, and whether one started after.
type watchedBody struct {
	io.ReadCloser
	mu       sync.Mutex
	reading  int
	returned bool
	// What went wrong, if anything.
	readingAtReturn, readAfterReturn bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	b.reading++
	if b.returned {
		b.readAfterReturn = true
	}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.reading--
		b.mu.Unlock()
	}()
	return b.ReadCloser.Read(p)
}

// handlerReturned notes that the handler has returned.
func (b *watchedBody) handlerReturned() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.returned = true
	b.readingAtReturn = b.reading > 0
}

// TestStreamBodyNotReadAfterReturn: once the stream handler returns, it no
// longer reads the request body, which net/http forbids, even while the
// client keeps the body open. The server ends this stream at its first
// message, an unknown category.
func TestStreamBodyNotReadAfterReturn(t *testing.T) {
	for _, http2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("http2=%v", http2), func(t *testing.T) {
			h, _ := startGateway(t)
			bodies := make(chan *watchedBody, 1)
			serve := serveHTTP1
			if http2 {
				serve = serveHTTP2
			}
			ts := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body := &watchedBody{ReadCloser: r.Body}
				r.Body = body
				h.ServeHTTP(w, r)
				body.handlerReturned()
				bodies <- body
			}))

			s := openRESTStream(t, ts, `{"category":"plants"}`)
			endsWithError(t, s, 3, `unknown category "plants"`)
			var body *watchedBody
			select {
			case body = <-bodies:
			case <-time.After(waitTimeout):
				t.Fatal("the handler did not return")
			}
			// A read that would start late starts soon after the
			// return, if at all.
			time.Sleep(100 * time.Millisecond)
			body.mu.Lock()
			defer body.mu.Unlock()
			if body.readingAtReturn {
				t.Error("a read of the body was in progress when the handler returned")
			}
			if body.readAfterReturn {
				t.Error("a read of the body started after the handler returned")
			}
		})
	}
}
