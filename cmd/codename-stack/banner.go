package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// bannerConfig is what the banner needs to know.
type bannerConfig struct {
	// userDir is where the user pastes the commands: paths in them are
	// relative to it when they lie below it, absolute otherwise.
	userDir string
	// binDir holds the client, and grpcurl when setup put it there.
	binDir string
	// ca is the development CA's file.
	ca                             string
	httpsAddr, httpAddr, statsAddr string
	// apiKey and statsPassword say that HAProxy asks for them, which
	// the commands cannot know.
	apiKey, statsPassword bool
}

// banner is what the stack prints once the system is up: commands that
// work when pasted in c.userDir (every indented line that is not a
// comment is one; e2e TestRunCommandFromAnotherFolder runs them all), and
// where the page is.
func banner(c bannerConfig) string {
	ca := c.path(c.ca)
	https, http := hostPort("localhost", c.httpsAddr), hostPort("localhost", c.httpAddr)
	stats := hostPort("localhost", c.statsAddr)
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, "  "+format+"\n", args...) }
	fmt.Fprintf(&b, "\ncodename-gateway is up. Try, from %s:\n\n", c.userDir)
	if c.apiKey {
		line("# HAProxy asks for the API key: add -H 'x-api-key: <the key>' to each command")
	}
	line("# one codename over HTTPS, then over cleartext HTTP/1.1")
	line("curl --cacert %s 'https://%s/v1/codename?category=science'", ca, https)
	line("curl 'http://%s/v1/codename?category=animals'", http)
	line(`# a stream that goes on until Ctrl-C: type {"category":"space"} and Enter to switch category`)
	line("curl -sSN -T - -X POST -H 'Content-Type: application/json' http://%s/v1/codenames:stream", http)
	grpcurl, found := c.tool("grpcurl")
	if found {
		line("# gRPC, with grpcurl and with this project's client")
	} else {
		line("# gRPC, with grpcurl (scripts/setup.sh run puts it in bin/) and with this project's client")
	}
	line(`%s -cacert %s -d '{"category":"space"}' %s codename.v1.CodenameCreator/GetCodename`, grpcurl, ca, https)
	client, _ := c.tool("codename-client")
	line("%s -addr %s -ca %s -category science", client, https, ca)
	line("# the OpenAPI document, and HAProxy's Prometheus metrics (its stats page: http://%s/stats)", stats)
	line("curl http://%s/openapi.json", http)
	if c.statsPassword {
		line("curl -u stats http://%s/metrics", stats)
	} else {
		line("curl http://%s/metrics", stats)
	}
	fmt.Fprintf(&b, "\nThe web page is at http://%s/ and, once your browser trusts %s, https://%s/.\nPress Ctrl-C to stop.\n\n", http, ca, https)
	return b.String()
}

// tool names a program as a shell should be told to run it from
// c.userDir: by its path when binDir has it, else by its name, which is
// then on PATH if found is true.
func (c bannerConfig) tool(name string) (cmd string, found bool) {
	if path := filepath.Join(c.binDir, name); isExecutable(path) {
		return c.path(path), true
	}
	_, err := exec.LookPath(name)
	return name, err == nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// path writes a file's path for a shell in c.userDir: relative when the
// file lies below it, absolute otherwise, quoted when it must be.
func (c bannerConfig) path(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return shellQuote(p)
	}
	if rel, err := filepath.Rel(c.userDir, abs); err == nil && filepath.IsLocal(rel) {
		if !strings.Contains(rel, "/") {
			// A bare name would be looked up on PATH.
			rel = "./" + rel
		}
		return shellQuote(rel)
	}
	return shellQuote(abs)
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:@%+=,-]+$`)

// shellQuote quotes s for a POSIX shell unless it needs none.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
