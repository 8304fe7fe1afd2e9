package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/codename-gateway/codename-gateway/internal/stack"
)

// TestPortTakenIsAnError starts a second stack with one of its listeners
// on a port the shared stack holds: it must fail to start, and its output
// must name the address (finding 6 of issue 10: with HAProxy's default
// SO_REUSEPORT a second HAProxy on a taken port started quietly and took
// half of the first one's traffic).
func TestPortTakenIsAnError(t *testing.T) {
	first := shared(t)
	for _, tt := range []struct {
		name  string
		taken string
		set   func(cfg *stack.Config, addr string)
	}{
		{"HAProxy's TLS listener", first.cfg.HTTPSAddr, func(c *stack.Config, a string) { c.HTTPSAddr = a }},
		{"HAProxy's cleartext listener", first.cfg.HTTPAddr, func(c *stack.Config, a string) { c.HTTPAddr = a }},
		{"HAProxy's stats listener", first.cfg.StatsAddr, func(c *stack.Config, a string) { c.StatsAddr = a }},
		{"the gRPC server", first.cfg.GRPCAddrs[0], func(c *stack.Config, a string) { c.GRPCAddrs[0] = a }},
		{"the gateway", first.cfg.GatewayAddrs[0], func(c *stack.Config, a string) { c.GatewayAddrs[0] = a }},
		{"the server's admin listener", first.cfg.GRPCAdminAddrs[0], func(c *stack.Config, a string) { c.GRPCAdminAddrs[0] = a }},
		// Co-located, the shared stack has no gateway admin listener: the
		// port is its server's, as taken as any.
		{"the gateway's admin listener", first.restAdminAddr(1), func(c *stack.Config, a string) { c.GatewayAdminAddrs[0] = a }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			free := freeAddrList(t, 7)
			// Separate: a gateway process of its own binds the gateway's
			// admin listener.
			_, err := tryStart(t, gatewayMode(stack.Separate), placed(func(c *stack.Config) {
				c.HTTPSAddr, c.HTTPAddr, c.StatsAddr = free[0], free[1], free[2]
				c.GRPCAddrs, c.GatewayAddrs, c.GRPCAdminAddrs, c.GatewayAdminAddrs = free[3:4], free[4:5], free[5:6], free[6:7]
				c.ReadyTimeout = 20 * time.Second
				tt.set(c, tt.taken)
			}))
			if err == nil {
				t.Fatalf("a second stack started with %s on %s, which the first one holds", tt.name, tt.taken)
			}
			// The error holds the stack's output.
			if log := err.Error(); !strings.Contains(log, tt.taken) || !strings.Contains(strings.ToLower(log), "address already in use") {
				t.Errorf("the error does not name %s as in use: %v", tt.taken, err)
			}
		})
	}
}

// TestStatsForOperatorsOnly: HAProxy's stats page and exporter listen on
// loopback unless told otherwise, can ask for basic auth, and do not show
// HAProxy's version (finding 5 of issue 10).
func TestStatsForOperatorsOnly(t *testing.T) {
	help, _ := exec.Command(filepath.Join(binDir, "codename-stack"), "-help").CombinedOutput()
	if !regexp.MustCompile(`(?s)-stats-addr.*default "?127\.0\.0\.1:8404`).Match(help) {
		t.Errorf("the run command's default stats address is not on loopback:\n%s", help)
	}

	s := start(t, withEnv("CODENAME_STATS_USER=ops", "CODENAME_STATS_PASSWORD=correct horse"))
	for _, path := range []string{"/stats", "/metrics"} {
		url := "http://" + s.cfg.StatsAddr + path
		if err := answers(url, http.StatusUnauthorized); err != nil {
			t.Errorf("without credentials: %v", err)
		}
		req, _ := http.NewRequest("GET", url, nil)
		req.SetBasicAuth("ops", "wrong")
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong password: %v %v, want 401", path, resp, err)
		} else {
			resp.Body.Close()
		}
		req.SetBasicAuth("ops", "correct horse")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s with the password: %s, want 200", path, resp.Status)
		}
		if path == "/stats" && regexp.MustCompile(`(?i)version\s*[0-9]|2\.6\.[0-9]`).MatchString(body) {
			t.Errorf("the stats page shows HAProxy's version")
		}
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// haproxyLine matches the fields of HAProxy's log line that come from the
// client: the content type, quoted as a JSON string, and the key's
// fingerprint after it.
var haproxyLine = regexp.MustCompile(`ct="((?:[^"\\]|\\.)*)" key=(\S+) `)

// TestLogLinesCannotBeForged sends content types that would add fields or
// lines to HAProxy's log if it were written raw: each must come out as one
// quoted, escaped value, with the real key field after it (finding 8 of
// issue 10: "application/json key=sha256:000… 200" wrote a second key=
// field, and control bytes went into the log as they were).
func TestLogLinesCannotBeForged(t *testing.T) {
	s := shared(t)
	for i, ct := range []string{
		"application/json key=sha256:000000000000 200",
		`application/json" key="sha256:000000000000`,
		"application/json\tkey=sha256:000000000000",
		"application/json\x1b[2J\x07",
	} {
		// HAProxy keeps 64 bytes of the content type: the marker that
		// finds the line comes first.
		marker := fmt.Sprintf("m%d-%d", i, time.Now().UnixNano()%1e6)
		sent := marker + " " + ct
		req := fmt.Sprintf("GET /v1/codename HTTP/1.1\r\nHost: localhost\r\nContent-Type: %s\r\n\r\n", sent)
		if _, err := h1Raw(s.cfg.HTTPAddr, req); err != nil {
			t.Fatal(err)
		}
		line := s.waitLine(t, "haproxy", marker)
		if strings.ContainsFunc(line, func(r rune) bool { return r < ' ' }) {
			t.Errorf("content type %q: control bytes in the log line %q", ct, line)
		}
		m := haproxyLine.FindAllStringSubmatch(line, -1)
		if len(m) != 1 {
			t.Errorf("content type %q: want exactly one ct=\"...\" key=... in %q", ct, line)
			continue
		}
		var logged string
		if err := json.Unmarshal([]byte(`"`+m[0][1]+`"`), &logged); err != nil || logged != sent {
			t.Errorf("content type %q logged as %q (%v), want it whole", sent, m[0][1], err)
		}
		if m[0][2] != "-" {
			t.Errorf("content type %q: key field %q, want - (no key was sent)", ct, m[0][2])
		}
	}
}
