package main

import (
	"fmt"
	"strings"
)

// feature is one feature of haproxy/haproxy.cfg that the benchmark turns
// off, alone, to weigh what it costs per gRPC call.
type feature struct {
	// name completes "without ...".
	name string
	// drop lists the lines to take out of the config, each by how it
	// starts once its indentation is trimmed. Every line that starts so
	// goes, wherever it is, and each must match at least one line.
	drop []string
	// unset lists the environment variables left out (the key and the rate
	// limit are read from the environment; unset means off).
	unset []string
}

const (
	apiKeyEnv    = "CODENAME_API_KEY"
	rateLimitEnv = "CODENAME_RATE_LIMIT"
)

// features are the features weighed one at a time. A line named here that
// the config lacks is an error: a variant that silently equalled the
// original would report a feature as free.
var features = []feature{
	// Without `log global` no proxy logs; the lines that only feed the
	// log line go too.
	{name: "logs", drop: []string{
		"log global",
		"option logasap",
		"log-format ",
		"http-request capture req.fhdr(content-type)",
	}},
	{name: "the API key check", unset: []string{apiKeyEnv}},
	{name: "the rate limit", unset: []string{rateLimitEnv}},
	// What the unary pools add for their retries: the whole request read
	// before it is sent, and retries on more than a failed connection
	// (which HAProxy retries by default, as the bare config does).
	{name: "request buffering and L7 retries", drop: []string{
		"option http-buffer-request",
		"retry-on conn-failure empty-response response-timeout",
	}},
	{name: "the canonical-request checks (path and header regexes)", drop: []string{
		"http-request set-var(txn.refused) str(malformed)",
	}},
	{name: "stick-table tracking (connections and requests per source)", drop: []string{
		"tcp-request connection track-sc1 ",
		"tcp-request connection reject if { sc1_conn_cur",
		"http-request track-sc2 ",
		"http-request set-var(txn.refused) str(busy)",
	}},
}

// withoutLines returns cfg without every line that starts, once its
// indentation is trimmed, with one of drop. It fails if one of drop
// starts no line.
func withoutLines(cfg string, drop []string) (string, error) {
	lines := strings.Split(cfg, "\n")
	found := make([]int, len(drop))
	keep := lines[:0:0]
	for _, line := range lines {
		trimmed := strings.TrimSpace(line)
		dropped := false
		for i, d := range drop {
			if strings.HasPrefix(trimmed, d) {
				found[i]++
				dropped = true
			}
		}
		if !dropped {
			keep = append(keep, line)
		}
	}
	for i, d := range drop {
		if found[i] == 0 {
			return "", fmt.Errorf("no line starts with %q", d)
		}
	}
	return strings.Join(keep, "\n"), nil
}
