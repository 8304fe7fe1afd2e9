package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// TestHTTP3: where the HAProxy under test has QUIC (3.0 and later in
// Debian), the TLS port's number also serves HTTP/3 over UDP and every TLS
// response announces it in Alt-Svc; REST calls, the SSE stream and the
// page work over it with quic-go's client. Where it has not (2.6), nothing
// announces or answers HTTP/3.
func TestHTTP3(t *testing.T) {
	s := shared(t)
	resp, _ := do(t, transports[1].client(t, s), "GET", s.httpsURL("/v1/codename"), "", "")
	altSvc := resp.Header.Get("Alt-Svc")
	_, port, err := net.SplitHostPort(s.cfg.HTTPSAddr)
	if err != nil {
		t.Fatal(err)
	}
	h3 := &http3.Transport{TLSClientConfig: s.tlsConfig()}
	t.Cleanup(func() { h3.Close() })
	c := &http.Client{Transport: h3, Timeout: 15 * time.Second}

	if !haproxyUnderTest(t).features["QUIC"] {
		if altSvc != "" {
			t.Errorf("Alt-Svc %q from an HAProxy without QUIC", altSvc)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", s.httpsURL("/v1/codename"), nil)
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			t.Errorf("HTTP/3 answered %s from an HAProxy without QUIC", resp.Status)
		}
		return
	}
	if want := fmt.Sprintf(`h3=":%s"; ma=86400`, port); altSvc != want {
		t.Errorf("Alt-Svc %q, want %q", altSvc, want)
	}
	// Cleartext responses announce nothing: HTTP/3 is TLS only.
	if resp, _ := do(t, transports[2].client(t, s), "GET", s.httpURL("/v1/codename"), "", ""); resp.Header.Get("Alt-Svc") != "" {
		t.Errorf("a cleartext response announces %q", resp.Header.Get("Alt-Svc"))
	}

	t.Run("unary", func(t *testing.T) {
		for _, call := range []struct{ method, path, ct, body string }{
			{"GET", "/v1/codename?category=space", "", ""},
			{"POST", "/v1/codename", "application/json", `{"category":"space"}`},
		} {
			resp, body := do(t, c, call.method, s.httpsURL(call.path), call.ct, call.body)
			var got struct{ Name string }
			if resp.ProtoMajor != 3 || resp.StatusCode != 200 || json.Unmarshal(body, &got) != nil || categoryOf(got.Name) != "space" {
				t.Errorf("%s %s over HTTP/3: %s %s %s", call.method, call.path, resp.Proto, resp.Status, body)
			}
		}
		// Errors keep their JSON shape.
		resp, body := do(t, c, "GET", s.httpsURL("/v1/codename?category=dragons"), "", "")
		if resp.StatusCode != 400 || !strings.Contains(string(body), `"code":3`) {
			t.Errorf("a bad category over HTTP/3: %s %s", resp.Status, body)
		}
	})

	t.Run("server-sent events", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "GET", s.httpsURL("/v1/codenames:stream?category=science"), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", "text/event-stream")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); resp.ProtoMajor != 3 || resp.StatusCode != 200 || ct != "text/event-stream" {
			t.Fatalf("got %s %s %q, want HTTP/3 200 text/event-stream", resp.Proto, resp.Status, ct)
		}
		for _, ev := range readEvents(t, bufio.NewReader(resp.Body), 3) {
			var l streamLine
			if err := json.Unmarshal([]byte(ev.data), &l); err != nil || l.Result == nil || categoryOf(l.Result.Name) != "science" {
				t.Errorf("event %+v: want a science codename (%v)", ev, err)
			}
		}
	})

	t.Run("page", func(t *testing.T) {
		resp, page := do(t, c, "GET", s.httpsURL("/"), "", "")
		if resp.ProtoMajor != 3 || resp.StatusCode != 200 || !strings.Contains(string(page), "<html") {
			t.Fatalf("the page over HTTP/3: %s %s", resp.Proto, resp.Status)
		}
		assets := regexp.MustCompile(`(?:src|href)="(/[^"]*)"`).FindAllStringSubmatch(string(page), -1)
		if len(assets) < 2 {
			t.Fatalf("the page links %d assets of its own, want its script and style at least", len(assets))
		}
		for _, a := range assets {
			if resp, _ := do(t, c, "GET", s.httpsURL(a[1]), "", ""); resp.ProtoMajor != 3 || resp.StatusCode != 200 {
				t.Errorf("%s over HTTP/3: %s %s", a[1], resp.Proto, resp.Status)
			}
		}
	})
}

// TestHTTP3CountsAgainstTheSourceLimit: QUIC connections count against a
// client address's share of connections (CODENAME_CONN_PER_SOURCE) as TCP
// ones do, so the UDP listener is no way around it: with a share of 3,
// of 6 QUIC connections held at once from one address, at most 3 are
// served and the others are closed before a request is answered.
func TestHTTP3CountsAgainstTheSourceLimit(t *testing.T) {
	if !haproxyUnderTest(t).features["QUIC"] {
		t.Log("this HAProxy has no QUIC listener (TestHTTP3 checks that)")
		return
	}
	const share = 3
	s := start(t, withEnv(fmt.Sprintf("CODENAME_CONN_PER_SOURCE=%d", share)))
	served, refused := 0, 0
	for i := range 2 * share {
		// One transport per connection, all kept open until the end.
		h3 := &http3.Transport{TLSClientConfig: s.tlsConfig()}
		t.Cleanup(func() { h3.Close() })
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		req, err := http.NewRequestWithContext(ctx, "GET", s.httpsURL("/v1/codename"), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := h3.RoundTrip(req)
		cancel()
		if err != nil {
			refused++
			t.Logf("QUIC connection %d: %v", i+1, err)
			continue
		}
		resp.Body.Close()
		served++
	}
	t.Logf("of %d QUIC connections from one address with a share of %d: %d served, %d refused", 2*share, share, served, refused)
	if served == 0 || served > share || refused < share {
		t.Errorf("%d served and %d refused, want 1 to %d served and the rest refused", served, refused, share)
	}
}
