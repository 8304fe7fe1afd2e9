package gateway_test

import (
	"strings"
	"testing"

	"github.com/codename-gateway/codename-gateway/server/codename"
)

// streamLine is one line of a stream's response, whichever transport
// carries it: an NDJSON line, the data of a Server-Sent Event, a WebSocket
// message.
type streamLine struct {
	Result *struct {
		Name string `json:"name"`
	} `json:"result"`
	Error *apiError `json:"error"`
}

// lineStream is an open stream of codenames, read a line at a time.
type lineStream interface {
	// next returns the next line and its text, or ok false once the
	// stream ends. It fails the test on a line that is not a streamLine.
	next() (line streamLine, raw string, ok bool)
}

// nextCategory returns the category of s's next line, which must be a name.
func nextCategory(t *testing.T, s lineStream) string {
	t.Helper()
	line, raw, ok := s.next()
	if !ok {
		t.Fatal("stream ended, want a name")
	}
	if line.Result == nil || line.Error != nil {
		t.Fatalf("got %s, want {\"result\":{\"name\":...}}", raw)
	}
	cat := codename.CategoryOf(line.Result.Name)
	if cat == "" {
		t.Fatalf("got name %q, which is from no category", line.Result.Name)
	}
	return cat
}

// wantNames reads n names from s, which must all be of category want.
func wantNames(t *testing.T, s lineStream, want string, n int) {
	t.Helper()
	for range n {
		if got := nextCategory(t, s); got != want {
			t.Fatalf("got a name from %q, want %q", got, want)
		}
	}
}

// switchTo reads names of category from until one of category to arrives,
// then n more, which must all be of category to.
func switchTo(t *testing.T, s lineStream, from, to string, n int) {
	t.Helper()
	for {
		got := nextCategory(t, s)
		if got == to {
			break
		}
		if got != from {
			t.Fatalf("got a name from %q while switching from %q to %q", got, from, to)
		}
	}
	wantNames(t, s, to, n)
}

// endsWithError skips names until the error line, checks it, and checks
// that the stream ends after it.
func endsWithError(t *testing.T, s lineStream, wantCode int, wantMessage string) {
	t.Helper()
	for {
		line, raw, ok := s.next()
		if !ok {
			t.Fatal("stream ended without an error line")
		}
		if line.Result != nil {
			continue // names already on their way
		}
		if line.Error == nil {
			t.Fatalf("got %s, want a result or an error", raw)
		}
		if line.Error.Code != wantCode || !strings.Contains(line.Error.Message, wantMessage) {
			t.Errorf("got error %s, want code %d and a message containing %q", raw, wantCode, wantMessage)
		}
		if line.Error.Details == nil {
			t.Errorf("error line %s has no details list", raw)
		}
		break
	}
	if _, raw, ok := s.next(); ok {
		t.Errorf("got %s after the error line, want the stream to end", raw)
	}
}
