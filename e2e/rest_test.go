package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// nameBody is the body of a unary REST answer.
type nameBody struct {
	Name string `json:"name"`
}

// errorBody is the gateway's JSON error shape.
type errorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Details []any  `json:"details"`
}

// do makes one request and reads the whole answer; a transport error fails
// the test.
func do(t *testing.T, c *http.Client, method, url, contentType, body string) (*http.Response, []byte) {
	t.Helper()
	header := http.Header{}
	if contentType != "" {
		header.Set("Content-Type", contentType)
	}
	return doWith(t, c, method, url, body, header)
}

// doWith is do with headers.
func doWith(t *testing.T, c *http.Client, method, url, body string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, b
}

func TestRESTUnary(t *testing.T) {
	s := shared(t)
	for _, tp := range transports {
		t.Run(tp.name, func(t *testing.T) {
			c := tp.client(t, s)
			for _, tt := range []struct {
				method, path, body, want string
			}{
				{"GET", "/v1/codename?category=science", "", "science"},
				{"GET", "/v1/codename", "", "animals"},
				{"POST", "/v1/codename", `{"category":"Space"}`, "space"},
				{"POST", "/v1/codename", ``, "animals"},
			} {
				resp, b := do(t, c, tt.method, tp.url(s, tt.path), "application/json", tt.body)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%s %s: %s %s", tt.method, tt.path, resp.Status, b)
				}
				if resp.ProtoMajor != tp.proto {
					t.Errorf("answered over HTTP/%d, want HTTP/%d", resp.ProtoMajor, tp.proto)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q, want application/json", ct)
				}
				var got nameBody
				if err := json.Unmarshal(b, &got); err != nil {
					t.Fatalf("%s %s: %v in %s", tt.method, tt.path, err, b)
				}
				if c := categoryOf(got.Name); c != tt.want {
					t.Errorf("%s %s %s = %q, want a %s codename", tt.method, tt.path, tt.body, got.Name, tt.want)
				}
			}
		})
	}
}

// TestRESTStreamFullDuplex keeps the request body open, changes category
// through it, and sees the change on the same response while it flows.
func TestRESTStreamFullDuplex(t *testing.T) {
	s := shared(t)
	for _, tp := range transports {
		t.Run(tp.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			body, send := io.Pipe()
			defer send.Close()
			req, err := http.NewRequestWithContext(ctx, "POST", tp.url(s, "/v1/codenames:stream"), body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			write := func(line string) {
				t.Helper()
				if _, err := io.WriteString(send, line+"\n"); err != nil {
					t.Fatalf("write %s: %v", line, err)
				}
			}
			// The first message must go out before the response arrives:
			// the server sends nothing, headers included, until it knows a
			// category.
			go func() { _, _ = io.WriteString(send, `{"category":"animals"}`+"\n") }()
			resp, err := tp.client(t, s).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.ProtoMajor != tp.proto {
				t.Fatalf("got %s over HTTP/%d, want 200 over HTTP/%d", resp.Status, resp.ProtoMajor, tp.proto)
			}
			lines := bufio.NewScanner(resp.Body)
			next := func() string {
				t.Helper()
				if !lines.Scan() {
					t.Fatalf("stream ended early: %v", lines.Err())
				}
				var msg struct {
					Result *nameBody  `json:"result"`
					Error  *errorBody `json:"error"`
				}
				if err := json.Unmarshal(lines.Bytes(), &msg); err != nil || msg.Result == nil {
					t.Fatalf("line %q: want {\"result\":{\"name\":...}} (%v)", lines.Bytes(), err)
				}
				return categoryOf(msg.Result.Name)
			}
			for range 2 {
				if got := next(); got != "animals" {
					t.Fatalf("got a %s codename, want animals", got)
				}
			}
			write(`{"category":"science"}`)
			switched := false
			for range 3 {
				if next() == "science" {
					switched = true
					break
				}
			}
			if !switched {
				t.Fatal("category change did not reach the open stream")
			}
			// Half-close: the body ends, the codenames go on.
			send.Close()
			for range 3 {
				if got := next(); got != "science" {
					t.Fatalf("after the body ended: got a %s codename, want science", got)
				}
			}
		})
	}
}

func TestRESTBadInput(t *testing.T) {
	s := shared(t)
	tests := []struct {
		name            string
		method, path    string
		contentType     string
		body            string
		wantStatus      int
		wantCode        int
		wantMsgContains string
	}{
		{"unknown category", "GET", "/v1/codename?category=dragons", "", "", 400, 3, "valid categories are animals, science, space"},
		{"unknown category in body", "POST", "/v1/codename", "application/json", `{"category":"dragons"}`, 400, 3, "valid categories are"},
		{"malformed JSON", "POST", "/v1/codename", "application/json", `{"category":`, 400, 3, ""},
		{"not JSON at all", "POST", "/v1/codename", "application/json", `category=science`, 400, 3, ""},
		{"unknown field", "POST", "/v1/codename", "application/json", `{"categroy":"science"}`, 400, 3, `unknown field "categroy"`},
		{"junk after the object", "POST", "/v1/codename", "application/json", `{"category":"science"} {"category":"animals"}`, 400, 3, "exactly one JSON value"},
		{"wrong type", "POST", "/v1/codename", "application/json", `{"category":7}`, 400, 3, ""},
		{"wrong method", "DELETE", "/v1/codename", "", "", 405, 12, "not allowed"},
		{"wrong method on stream", "DELETE", "/v1/codenames:stream", "", "", 405, 12, "not allowed"},
		{"plain GET on stream", "GET", "/v1/codenames:stream", "", "", 406, 12, "WebSocket upgrade or Accept: text/event-stream"},
		{"unknown path", "GET", "/v2/codename", "", "", 404, 5, ""},
		{"unknown verb", "POST", "/v1/codenames:nope", "application/json", `{}`, 404, 5, ""},
	}
	for _, tp := range []transport{transports[1], transports[2]} {
		t.Run(tp.name, func(t *testing.T) {
			c := tp.client(t, s)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					resp, b := do(t, c, tt.method, tp.url(s, tt.path), tt.contentType, tt.body)
					if resp.StatusCode != tt.wantStatus {
						t.Errorf("status = %d, want %d (%s)", resp.StatusCode, tt.wantStatus, b)
					}
					if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
						t.Errorf("Content-Type = %q, want application/json", ct)
					}
					var got errorBody
					if err := json.Unmarshal(b, &got); err != nil {
						t.Fatalf("body %q is not the JSON error shape: %v", b, err)
					}
					if got.Code != tt.wantCode || got.Message == "" || got.Details == nil {
						t.Errorf("body = %s, want code %d, a message and details", b, tt.wantCode)
					}
					if !strings.Contains(got.Message, tt.wantMsgContains) {
						t.Errorf("message %q does not contain %q", got.Message, tt.wantMsgContains)
					}
				})
			}
			// Nothing above hurt the service.
			resp, b := do(t, c, "GET", tp.url(s, "/v1/codename?category=space"), "", "")
			if resp.StatusCode != http.StatusOK {
				t.Errorf("after bad input: %s %s", resp.Status, b)
			}
		})
	}
}

func TestRESTStreamBadInput(t *testing.T) {
	s := shared(t)
	c := transports[1].client(t, s)
	for _, tt := range []struct {
		name, body, wantMsg string
	}{
		{"unknown category", `{"category":"dragons"}`, "valid categories are"},
		{"malformed JSON", `{"category":"animals"}` + "\n" + `{"category":`, "request stream"},
		{"unknown field", `{"categroy":"animals"}`, `unknown field "categroy"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := do(t, c, "POST", s.httpsURL("/v1/codenames:stream"), "application/json", tt.body)
			// An error found before the first codename is a 400; one found
			// later can only be the last line of a 200. Either way the last
			// line says what went wrong.
			if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status = %s, want 200 or 400", resp.Status)
			}
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			var last struct {
				Error *errorBody `json:"error"`
			}
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Error == nil {
				t.Fatalf("last line %q: want {\"error\":...} (%v)", lines[len(lines)-1], err)
			}
			if last.Error.Code != 3 || !strings.Contains(last.Error.Message, tt.wantMsg) {
				t.Errorf("error = %+v, want code 3 and a message containing %q", *last.Error, tt.wantMsg)
			}
		})
	}
}

func TestGatewayServesHealthOpenAPIAndPage(t *testing.T) {
	s := shared(t)
	c := transports[0].client(t, s)
	for _, tt := range []struct {
		path, wantType, wantBody string
	}{
		{"/healthz", "application/json", `"SERVING"`},
		{"/openapi.json", "application/json", `"/v1/codenames:stream"`},
		{"/", "text/html; charset=utf-8", "<title>"},
	} {
		resp, b := do(t, c, "GET", s.httpsURL(tt.path), "", "")
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", tt.path, resp.Status)
		}
		if ct := resp.Header.Get("Content-Type"); ct != tt.wantType {
			t.Errorf("GET %s: Content-Type %q, want %q", tt.path, ct, tt.wantType)
		}
		if !strings.Contains(string(b), tt.wantBody) {
			t.Errorf("GET %s: body does not contain %s", tt.path, tt.wantBody)
		}
	}
}
