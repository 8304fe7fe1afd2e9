package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// sseEvent is one event of a text/event-stream.
type sseEvent struct {
	name  string // the event: field; "" for a message
	data  string
	retry string
}

// sseStream is an open GET of the stream as Server-Sent Events.
type sseStream struct {
	t    *testing.T
	resp *http.Response
	r    *bufio.Reader
}

// openSSE starts the stream with the given query. The request ends with
// the test, or after waitTimeout.
func openSSE(t *testing.T, ts *httptest.Server, query string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/v1/codenames:stream?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return &sseStream{t: t, resp: resp, r: bufio.NewReader(resp.Body)}
}

// next reads the next event, or returns ok false if the response ends
// before one starts. Reads are bounded by the request's timeout.
func (s *sseStream) next() (ev sseEvent, ok bool) {
	s.t.Helper()
	started := false
	for {
		line, err := s.r.ReadString('\n')
		if errors.Is(err, io.EOF) && line == "" && !started {
			return sseEvent{}, false
		}
		if err != nil {
			s.t.Fatalf("read event: %v (line so far %q)", err, line)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if started {
				return ev, true
			}
			continue
		}
		started = true
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			ev.name = value
		case "data":
			ev.data += value
		case "retry":
			ev.retry = value
		default:
			s.t.Fatalf("unexpected line %q", line)
		}
	}
}

// nextCategory reads a message event and returns the category of the name
// in it.
func (s *sseStream) nextCategory() string {
	s.t.Helper()
	ev, ok := s.next()
	if !ok {
		s.t.Fatal("response ended, want a name")
	}
	var line streamLine
	if err := json.Unmarshal([]byte(ev.data), &line); ev.name != "" || err != nil || line.Result == nil {
		s.t.Fatalf("got event %q with data %q, want a message with {\"result\":{\"name\":...}}", ev.name, ev.data)
	}
	cat := categoryOf(line.Result.Name)
	if cat == "" {
		s.t.Fatalf("got name %q, which is from no category", line.Result.Name)
	}
	return cat
}

// endsWithError skips names until the error event, checks it, and checks
// that the response ends after it.
func (s *sseStream) endsWithError(wantCode int, wantMessage string) {
	s.t.Helper()
	for {
		ev, ok := s.next()
		if !ok {
			s.t.Fatal("response ended without an error event")
		}
		if ev.name == "" {
			continue // names already on their way
		}
		var line streamLine
		if err := json.Unmarshal([]byte(ev.data), &line); ev.name != "error" || err != nil || line.Error == nil {
			s.t.Fatalf("got event %q with data %q, want an error event with {\"error\":{...}}", ev.name, ev.data)
		}
		if line.Error.Code != wantCode || !strings.Contains(line.Error.Message, wantMessage) {
			s.t.Errorf("got error %s, want code %d and a message containing %q", ev.data, wantCode, wantMessage)
		}
		break
	}
	if ev, ok := s.next(); ok {
		s.t.Errorf("got event %+v after the error event, want the response to end", ev)
	}
}

// checkStart checks the response headers and the first event, which only
// sets how long EventSource waits to reconnect.
func (s *sseStream) checkStart() {
	s.t.Helper()
	if got, want := s.resp.StatusCode, http.StatusOK; got != want {
		s.t.Fatalf("status = %d, want %d", got, want)
	}
	if mt, _, _ := mime.ParseMediaType(s.resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		s.t.Errorf("content type = %q, want text/event-stream", mt)
	}
	if got, want := s.resp.Header.Get("Cache-Control"), "no-store"; got != want {
		s.t.Errorf("Cache-Control = %q, want %q", got, want)
	}
	ev, ok := s.next()
	if !ok || ev.retry == "" || ev.data != "" {
		s.t.Errorf("first event = %+v (present: %v), want a retry: line alone", ev, ok)
	}
}

func TestServerSentEvents(t *testing.T) {
	h, _ := startGateway(t)
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	tests := []struct {
		name  string
		query string
		want  string
	}{
		{name: "category", query: "category=science", want: "science"},
		{name: "category in upper case", query: "category=SPACE", want: "space"},
		{name: "no category is the default", query: "", want: "animals"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openSSE(t, ts, tt.query)
			s.checkStart()
			// Names come one by one while the response is open, which
			// also shows that flushes pass through the request logger.
			for range 3 {
				if got := s.nextCategory(); got != tt.want {
					t.Fatalf("got a name from %q, want %q", got, tt.want)
				}
			}
		})
	}
}

// TestServerSentEventsErrors: errors, the first included, are error events
// on a 200 response, since EventSource hides the body of any other status.
func TestServerSentEventsErrors(t *testing.T) {
	t.Run("unknown category", func(t *testing.T) {
		h, _ := startGateway(t)
		ts := httptest.NewServer(h)
		t.Cleanup(ts.Close)
		s := openSSE(t, ts, "category=plants")
		s.checkStart()
		s.endsWithError(3, `unknown category "plants": valid categories are animals, science, space`)
	})
	t.Run("server shuts down", func(t *testing.T) {
		h, shutdown := startGateway(t)
		ts := httptest.NewServer(h)
		t.Cleanup(ts.Close)
		s := openSSE(t, ts, "category=space")
		s.checkStart()
		if got := s.nextCategory(); got != "space" {
			t.Fatalf("got a name from %q, want space", got)
		}
		shutdown()
		s.endsWithError(14, "server is shutting down")
	})
}
