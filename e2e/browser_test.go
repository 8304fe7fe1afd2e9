package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/codename-gateway/codename-gateway/internal/poll"
)

// artifactDir receives the screenshots the browser tests take.
var artifactDir = filepath.Join(repoRoot, "test-artifacts")

// newBrowser starts headless Chromium (Debian's) with a home folder of its
// own whose NSS database trusts the stack's development CA, exactly as a
// user who imported .state/tls/ca.pem would. The browser is stopped when the
// test ends.
func newBrowser(t *testing.T, s *system) context.Context {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed (scripts/setup.sh test installs it): %v", err)
	}
	home := t.TempDir()
	nssdb := "sql:" + filepath.Join(home, ".pki", "nssdb")
	if err := os.MkdirAll(filepath.Join(home, ".pki", "nssdb"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-d", nssdb, "-N", "--empty-password"},
		{"-d", nssdb, "-A", "-t", "C,,", "-n", "codename-gateway development CA", "-i", s.caFile},
	} {
		if out, err := exec.CommandContext(t.Context(), "certutil", args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %v: %v\n%s", args, err, out)
		}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // we run as root in CI
		chromedp.DisableGPU,
		chromedp.UserDataDir(filepath.Join(home, "profile")),
		chromedp.Env("HOME="+home),
		chromedp.WindowSize(1280, 900),
		// No traffic but to the page: this machine has no network.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-proxy-server", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the browser process to exit
		// Its helper processes can still write into the profile for a
		// moment after, which makes the TempDir's removal fail the test.
		profile := filepath.Join(home, "profile")
		if _, ok := poll.Until(5*time.Second, func() bool { return os.RemoveAll(profile) == nil }); !ok {
			t.Errorf("the browser's profile %s could not be removed within 5 s", profile)
		}
	})
	// The first action starts the browser, which then lives as long as
	// ctx; it must run without a timeout of its own.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// page drives the demo page through its element IDs.
type page struct {
	t   *testing.T
	ctx context.Context
}

func (p page) run(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatal(err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](p page, js string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitFor polls a JavaScript condition until it holds, inside the page
// (chromedp.Poll), so that each check costs no round trip to the browser.
func (p page) waitFor(what, js string, timeout time.Duration) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, timeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		p.t.Fatalf("waiting for %s: %v (state %q, error %q)", what, err, p.text("#state"), p.text("#error"))
	}
}

func (p page) text(sel string) string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q)||{}).textContent||""`, sel)))
	return strings.TrimSpace(s)
}

// choose selects value in a <select> the way a user's choice does.
func (p page) choose(sel, value string) {
	p.t.Helper()
	if got := eval[string](p, fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = %q; e.dispatchEvent(new Event("change", {bubbles: true})); return e.value })()`, sel, value)); got != value {
		p.t.Fatalf("%s has no option %q", sel, value)
	}
}

// click clicks the button sel, which must be there and enabled. It calls
// the button's own click(), which runs the page's handler as a user's
// click does: a click by coordinates (chromedp.Click) could land beside
// the button when the layout moved under it (codenames arriving, a
// message shown or cleared above), and under a loaded machine the test
// once waited in vain for a stream to stop.
func (p page) click(sel string) {
	p.t.Helper()
	js := fmt.Sprintf(`(() => { const b = document.querySelector(%q); if (!b || b.disabled) return false; b.click(); return true })()`, sel)
	if !eval[bool](p, js) {
		p.t.Fatalf("cannot click %s: it is missing or disabled", sel)
	}
}

func (p page) names() []string {
	return eval[[]string](p, `[...document.querySelectorAll("#names li")].map(li => li.textContent.trim())`)
}

func (p page) connects() int {
	return eval[int](p, `Number(document.querySelector("#state").dataset.connects || 0)`)
}

// waitNewest waits until the newest streamed name is of category while the
// page says it is streaming, and, if more is given, for more to hold too.
func (p page) waitNewest(what, category string, timeout time.Duration, more ...func() bool) {
	p.t.Helper()
	poll.For(p.t, what, timeout, func() error {
		st := eval[struct {
			Newest string `json:"newest"`
			State  string `json:"state"`
		}](p, `({newest: (document.querySelector("#names li") || {}).textContent || "", state: document.querySelector("#state").dataset.state})`)
		ok := categoryOf(strings.TrimSpace(st.Newest)) == category && st.State == "streaming"
		for _, m := range more {
			ok = ok && m()
		}
		if !ok {
			return fmt.Errorf("newest %q, state %q, error %q", st.Newest, st.State, p.text("#error"))
		}
		return nil
	})
}

func (p page) screenshot(name string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG, whole page
	if err != nil {
		p.t.Fatal(err)
	}
	if err := os.MkdirAll(artifactDir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	path := filepath.Join(artifactDir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot: %s", path)
}

// TestBrowserPage uses the demo page in headless Chromium through HAProxy,
// over HTTPS (trusting the development CA) and over HTTP.
func TestBrowserPage(t *testing.T) {
	s := start(t, withEnv("CODENAME_STREAM_INTERVAL=200ms"))
	for _, scheme := range []string{"https", "http"} {
		t.Run(scheme, func(t *testing.T) {
			p := page{t: t, ctx: newBrowser(t, s)}
			url := s.httpURL("/")
			if scheme == "https" {
				url = "https://localhost:" + strings.Split(s.cfg.HTTPSAddr, ":")[1] + "/"
			}
			p.run(chromedp.Navigate(url))
			p.waitFor("the categories from the server", `document.querySelectorAll("#category option").length >= 3`, 10*time.Second)
			// Every control has a label a screen reader can announce.
			if unlabelled := eval[[]string](p, `[...document.querySelectorAll("select, button, input")].filter(e => !(e.labels && e.labels.length) && !e.getAttribute("aria-label") && !(e.tagName === "BUTTON" && e.textContent.trim())).map(e => e.id || e.outerHTML)`); len(unlabelled) > 0 {
				t.Errorf("controls without a label: %v", unlabelled)
			}

			// Unary, from the keyboard.
			p.choose("#category", "science")
			p.run(chromedp.Focus(chromedp.CSS("#get-one")), chromedp.KeyEvent("\r"))
			p.waitFor("one codename", `document.querySelector("#codename").textContent.trim() !== ""`, 10*time.Second)
			if got := p.text("#codename"); categoryOf(got) != "science" {
				t.Errorf("#codename = %q, want a science codename", got)
			}

			// The gateway's error message for a bad request reaches the page.
			eval[bool](p, `(() => { const o = document.createElement("option"); o.value = o.textContent = "dragons"; document.querySelector("#category").append(o); return true })()`)
			p.choose("#category", "dragons")
			p.click("#get-one")
			p.waitFor("the error message", `document.querySelector("#error").textContent.includes("valid categories are")`, 10*time.Second)
			eval[bool](p, `(() => { document.querySelector("#category option[value=dragons]").remove(); return true })()`)

			// A WebSocket stream, and a category change on the same stream.
			p.choose("#transport", "ws")
			p.choose("#category", "animals")
			p.click("#start")
			p.waitNewest("three animals", "animals", 10*time.Second, func() bool { return len(p.names()) >= 3 })
			connects := p.connects()
			p.choose("#category", "space")
			p.waitNewest("space codenames on the same stream", "space", 10*time.Second)
			if got := p.connects(); got != connects {
				t.Errorf("the stream was reopened to change category (%d connects, want %d)", got, connects)
			}

			// The backend restarts: the page reconnects by itself and goes
			// on with the chosen category.
			if _, err := s.Restart("server-1"); err != nil {
				t.Fatal(err)
			}
			p.waitNewest("a reconnect", "space", 20*time.Second, func() bool { return p.connects() > connects })
			p.screenshot("browser-" + scheme)

			p.click("#stop")
			p.waitFor("the stream to stop", `document.querySelector("#state").dataset.state === "stopped"`, 5*time.Second)

			// Server-Sent Events and fetch read the same stream.
			for _, transport := range []string{"sse", "fetch"} {
				p.choose("#transport", transport)
				p.choose("#category", "science")
				p.click("#start")
				p.waitNewest(transport+" science codenames", "science", 10*time.Second)
				p.click("#stop")
				p.waitFor("the stream to stop", `document.querySelector("#state").dataset.state === "stopped"`, 5*time.Second)
			}
			if len(p.names()) == 0 {
				t.Error("no names listed")
			}

			// An error on the SSE stream arrives as an event the page shows.
			eval[bool](p, `(() => { const o = document.createElement("option"); o.value = o.textContent = "dragons"; document.querySelector("#category").append(o); return true })()`)
			p.choose("#transport", "sse")
			p.choose("#category", "dragons")
			p.click("#start")
			p.waitFor("the stream's error", `document.querySelector("#error").textContent.includes("valid categories are") && document.querySelector("#state").dataset.state === "error"`, 10*time.Second)
			eval[bool](p, `(() => { document.querySelector("#category option[value=dragons]").remove(); return true })()`)

			// The page asked nothing of any other origin.
			if foreign := eval[[]string](p, `performance.getEntriesByType("resource").map(e => e.name).filter(u => new URL(u).origin !== location.origin)`); len(foreign) > 0 {
				t.Errorf("requests to other origins: %v", foreign)
			}

			// The same page on a phone-sized screen.
			p.run(chromedp.EmulateViewport(390, 844))
			p.screenshot("browser-" + scheme + "-phone")
		})
	}
}
