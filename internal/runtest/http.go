package runtest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Get sends GET path, exactly as written (a client would clean it), to
// addr over HTTP/1.1 on a connection of its own, and returns the status
// and the body.
func Get(t testing.TB, addr, path string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(Timeout))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, addr); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s on %s: %v", path, addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s on %s: read body: %v", path, addr, err)
	}
	return resp.StatusCode, string(body)
}

// Answer is what a listener should answer to a GET.
type Answer struct {
	Name, Addr, Path string
	// Code is the status, and Body a part of the body.
	Code int
	Body string
}

// CheckAnswers sends each GET, in a subtest of its own, and checks the
// answer.
func CheckAnswers(t *testing.T, answers []Answer) {
	t.Helper()
	for _, a := range answers {
		t.Run(a.Name, func(t *testing.T) {
			code, body := Get(t, a.Addr, a.Path)
			if code != a.Code || !strings.Contains(body, a.Body) {
				t.Errorf("GET %s on %s = %d, want %d with %q in the body:\n%.300s", a.Path, a.Addr, code, a.Code, a.Body, body)
			}
		})
	}
}
