package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// logCT is how HAProxy's log line shows a content type: JSON-escaped, so
// a slash is "\/" (haproxy.cfg's CODENAME_LOG_FORMAT).
func logCT(contentType string) string {
	return `ct="` + strings.ReplaceAll(contentType, "/", `\/`) + `"`
}

// TestTypedClientsInBrowser uses the demo page's typed clients in headless
// Chromium through HAProxy: @connectrpc/connect-web's Connect and gRPC-Web
// transports over the code protoc-gen-es generated from the proto, bundled
// into web/static/typed.js by scripts/generate.sh. For each protocol: a
// unary call, its error for an unknown category, the server stream and a
// category change (which restarts it), over HTTPS (HTTP/2) and HTTP
// (HTTP/1.1). HAProxy's log shows that each call went in its protocol.
func TestTypedClientsInBrowser(t *testing.T) {
	s := start(t, withEnv("CODENAME_STREAM_INTERVAL=200ms"))
	for _, scheme := range []string{"https", "http"} {
		t.Run(scheme, func(t *testing.T) {
			p := page{t: t, ctx: newBrowser(t, s)}
			url, httpVersion := s.httpURL("/"), "HTTP/1.1"
			if scheme == "https" {
				url, httpVersion = "https://localhost:"+strings.Split(s.cfg.HTTPSAddr, ":")[1]+"/", "HTTP/2.0"
			}
			p.run(chromedp.Navigate(url))
			p.waitFor("the categories from the server", `document.querySelectorAll("#category option").length >= 3`, 10*time.Second)

			for _, pr := range []struct {
				protocol, unaryType, streamType string
			}{
				{"connect", "application/json", "application/connect+json"},
				{"grpcweb", "application/grpc-web+proto", "application/grpc-web+proto"},
			} {
				// Unary.
				p.choose("#unary-protocol", pr.protocol)
				if got := p.text("#once-request"); !strings.Contains(got, "/codename.v1.CodenameCreator/GetCodename") {
					t.Errorf("%s: the card names the call %q", pr.protocol, got)
				}
				p.choose("#category", "science")
				eval[bool](p, `(() => { document.querySelector("#codename").textContent = ""; return true })()`)
				p.click("#get-one")
				p.waitFor(pr.protocol+" codename", `document.querySelector("#codename").textContent.trim() !== ""`, 10*time.Second)
				if got := p.text("#codename"); categoryOf(got) != "science" {
					t.Errorf("%s: #codename = %q, want a science codename", pr.protocol, got)
				}
				s.waitLine(t, "haproxy", " POST ", "/codename.v1.CodenameCreator/GetCodename "+httpVersion, logCT(pr.unaryType), " 200 ")

				// The server's error for an unknown category reaches the page
				// with its message.
				eval[bool](p, `(() => { const o = document.createElement("option"); o.value = o.textContent = "dragons"; document.querySelector("#category").append(o); return true })()`)
				p.choose("#category", "dragons")
				p.click("#get-one")
				p.waitFor(pr.protocol+" error message", `document.querySelector("#error").textContent.includes("valid categories are")`, 10*time.Second)

				// The stream of an unknown category ends in the error state:
				// the code, INVALID_ARGUMENT, is permanent, so no retry.
				p.choose("#transport", pr.protocol)
				p.click("#start")
				p.waitFor(pr.protocol+" stream error", `document.querySelector("#error").textContent.includes("valid categories are") && document.querySelector("#state").dataset.state === "error"`, 10*time.Second)
				eval[bool](p, `(() => { document.querySelector("#category option[value=dragons]").remove(); return true })()`)

				// The server stream, and a category change, which restarts
				// it: the request body was sent once.
				p.choose("#category", "animals")
				p.click("#start")
				p.waitNewest(pr.protocol+" animals", "animals", 10*time.Second, func() bool { return len(p.names()) >= 3 })
				connects := p.connects()
				p.choose("#category", "space")
				p.waitNewest(pr.protocol+" space after the change", "space", 10*time.Second, func() bool { return p.connects() > connects })
				s.waitLine(t, "haproxy", " POST ", "/codename.v1.CodenameCreator/KeepGettingCodenames "+httpVersion, logCT(pr.streamType))
				p.click("#stop")
				p.waitFor("the stream to stop", `document.querySelector("#state").dataset.state === "stopped"`, 5*time.Second)
			}
			// The grpcweb stream again, through a backend restart: the page
			// reconnects by itself.
			p.click("#start")
			p.waitNewest("the gRPC-Web stream", "space", 10*time.Second)
			connects := p.connects()
			if _, err := s.Restart("server-1"); err != nil {
				t.Fatal(err)
			}
			p.waitNewest("a reconnect", "space", 20*time.Second, func() bool { return p.connects() > connects })
			p.screenshot("browser-typed-" + scheme)
			p.click("#stop")

			if foreign := eval[[]string](p, `performance.getEntriesByType("resource").map(e => e.name).filter(u => new URL(u).origin !== location.origin)`); len(foreign) > 0 {
				t.Errorf("requests to other origins: %v", foreign)
			}
		})
	}
}
