package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/internal/poll"
	"github.com/codename-gateway/codename-gateway/internal/stack"
)

// TestPrometheusScrapesTheStack runs Debian's Prometheus (bin/prometheus,
// from scripts/setup.sh) with the shipped deploy/prometheus/prometheus.yml
// and rules.yml, unchanged, against a stack of two replicas, with the
// README's commands (only the addresses changed): every target is up under
// its replica's name, every recording rule yields numbers once calls flow,
// every series a rule reads exists, and the gateway's error alert sees the
// errors the test causes while no alert about capacity or health fires.
func TestPrometheusScrapesTheStack(t *testing.T) {
	t.Parallel() // a system of its own; mostly waiting on Prometheus scrapes
	prometheus := filepath.Join(repoRoot, "bin", "prometheus")
	if _, err := os.Stat(prometheus); err != nil {
		t.Fatalf("Prometheus is missing (scripts/setup.sh test installs it into bin/): %v", err)
	}
	// Separate: the rules read the gateway job's gRPC client metrics,
	// which a co-located gateway (no network call) does not have.
	s := start(t, replicas(2), gatewayMode(stack.Separate))

	// Prometheus reads rule files and target files relative to the
	// config's folder, so the shipped files are linked into a folder of
	// the test's own, beside the targets it writes.
	dir := t.TempDir()
	for _, f := range []string{"prometheus.yml", "rules.yml"} {
		if err := os.Symlink(filepath.Join(repoRoot, "deploy", "prometheus", f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{"haproxy-1": s.cfg.StatsAddr} // instance: address scraped
	targets := map[string][]string{"haproxy": {s.cfg.StatsAddr}, "server": s.cfg.GRPCAdminAddrs, "gateway": s.cfg.GatewayAdminAddrs}
	if err := os.Mkdir(filepath.Join(dir, "targets"), 0o755); err != nil {
		t.Fatal(err)
	}
	for job, addrs := range targets {
		var b strings.Builder
		for i, a := range addrs {
			fmt.Fprintf(&b, "- targets: [%q]\n  labels: {replica: \"%d\"}\n", a, i+1)
			want[fmt.Sprintf("%s-%d", job, i+1)] = a
		}
		if err := os.WriteFile(filepath.Join(dir, "targets", job+".yml"), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Prometheus as the README starts it from the repository, with the
	// run command's addresses swapped for this stack's: the config in the
	// test's folder, a free port, storage in the folder.
	addr := freeAddrList(t, 1)[0]
	swap := map[string]string{
		"deploy/prometheus/prometheus.yml": filepath.Join(dir, "prometheus.yml"),
		"127.0.0.1:9095":                   addr,
		".state/prometheus":                filepath.Join(dir, "data"),
	}
	start := readmeShBlock(t, "scripts/prometheus-debian.sh")
	if len(start) != 2 || !strings.HasPrefix(start[1], "bin/prometheus ") {
		t.Fatalf("README: the Prometheus block is %q, want scripts/prometheus-debian.sh, then bin/prometheus", start)
	}
	// Installed already (checked above), so the script must do nothing.
	if out, err := readmeRun(start[0], swap); err != nil || out != "" {
		t.Fatalf("README: %s: %v, printed %q, want nothing", start[0], err, out)
	}
	argv := strings.Fields(swapAll(t, start[1], swap))
	argv[0] = filepath.Join(repoRoot, argv[0])
	proc := startToolProc(t, "prometheus", argv, append(os.Environ(), "GOMAXPROCS=1"))
	api := promAPI{base: "http://" + addr, proc: proc, client: &http.Client{Timeout: 5 * time.Second}}

	// Every target up, named after its replica.
	begin := time.Now()
	if err := poll.Check(60*time.Second, func() error { return api.targetsUp(want) }); err != nil {
		t.Fatalf("targets: %v", err)
	}
	t.Logf("all %d targets up after %v", len(want), time.Since(begin).Round(time.Millisecond))

	// The README's queries: up is 1 for each target, and no alert is
	// pending or firing before any call.
	queries := readmeShBlock(t, "bin/promtool query instant")
	if len(queries) != 2 || !strings.HasSuffix(queries[0], "'up'") || !strings.HasSuffix(queries[1], "'ALERTS'") {
		t.Fatalf("README: the query block is %q, want the queries of up and ALERTS", queries)
	}
	out, err := readmeRun(queries[0], swap)
	if err != nil {
		t.Fatalf("README: %s: %v\n%s", queries[0], err, out)
	}
	ups := strings.Split(strings.TrimSpace(out), "\n")
	slices.Sort(ups)
	var wantUps []string
	for inst := range want {
		job, replica, _ := strings.Cut(inst, "-")
		wantUps = append(wantUps, fmt.Sprintf(`up{instance="%s", job="%s", replica="%s"} => 1`, inst, job, replica))
	}
	slices.Sort(wantUps)
	for i := range ups {
		ups[i], _, _ = strings.Cut(ups[i], " @[") // the evaluation time
	}
	if !slices.Equal(ups, wantUps) {
		t.Errorf("README: %s printed\n%s\nwant\n%s", queries[0], out, strings.Join(wantUps, "\n"))
	}
	if out, err := readmeRun(queries[1], swap); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("README: %s: %v, printed %q, want nothing on a healthy stack", queries[1], err, out)
	}

	// Calls through the edge until the rules see them: every recording
	// rule has numbers, those of the calls have the values the calls
	// make, and the gateway's error alert is pending. Each round (two a
	// second, to spare the shared cores) sends REST and gRPC calls that
	// succeed, one the server refuses (InvalidArgument) and one REST call
	// whose deadline (grpc-gateway's Grpc-Timeout header) has passed
	// before the gateway's call is made (DeadlineExceeded, 504): half the
	// gateway's calls fail.
	rules := api.rules(t)
	grpcClient := s.grpcClient(t, false)
	httpClient := &http.Client{Timeout: 10 * time.Second}
	values := []struct {
		query string
		ok    func(float64) bool
		want  string
	}{
		{`job_method_code:grpc_server_handled:rate1m{job="server",grpc_method="GetCodename",grpc_code="OK"}`, func(v float64) bool { return v > 0 }, "> 0"},
		{`job_method_code:grpc_server_handled:rate1m{job="server",grpc_method="GetCodename",grpc_code="InvalidArgument"}`, func(v float64) bool { return v > 0 }, "> 0"},
		{`job_method_code:grpc_client_handled:rate1m{job="gateway",grpc_method="GetCodename",grpc_code="DeadlineExceeded"}`, func(v float64) bool { return v > 0 }, "> 0"},
		{`job:grpc_client_errors:ratio_rate1m{job="gateway"}`, func(v float64) bool { return v > 0.3 && v < 0.7 }, "about 0.5"},
		{`job:grpc_server_errors:ratio_rate1m{job="server"}`, func(v float64) bool { return v == 0 }, "0"},
		{`job_proxy:haproxy_server_up:ratio{proxy="be_grpc"}`, func(v float64) bool { return v == 1 }, "1"},
		{`job_proxy:haproxy_server_up:ratio{proxy="be_rest"}`, func(v float64) bool { return v == 1 }, "1"},
		{`job_proxy_server:haproxy_server_sessions:saturation{proxy="be_grpc_stream",server="grpc2"}`, func(v float64) bool { return v >= 0 && v < 0.8 }, "under 0.8"},
		{`job_method:grpc_server_handling_seconds:p99_rate1m{job="server",grpc_method="GetCodename"}`, func(v float64) bool { return v > 0 && v <= 10 }, "within the histogram's buckets"},
	}
	begin = time.Now()
	var sent time.Time
	err = poll.Check(90*time.Second, func() error {
		if time.Since(sent) >= 500*time.Millisecond {
			if err := sendCalls(grpcClient, httpClient, s); err != nil {
				return err
			}
			sent = time.Now()
		}
		for _, r := range rules {
			if r.Type != "recording" {
				continue
			}
			samples, err := api.query(r.Name)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(samples, func(s promSample) bool { return !math.IsNaN(s.value) && !math.IsInf(s.value, 0) }) {
				return fmt.Errorf("%s has no sample with a number yet: %v", r.Name, samples)
			}
		}
		for _, c := range values {
			samples, err := api.query(c.query)
			if err != nil {
				return err
			}
			if len(samples) != 1 || !c.ok(samples[0].value) {
				return fmt.Errorf("%s = %v, want one sample %s", c.query, samples, c.want)
			}
		}
		active, err := api.alerts()
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(active, func(a promAlert) bool {
			return a.Labels["alertname"] == "CodenameGatewayErrors" && a.Labels["job"] == "gateway"
		}) {
			return fmt.Errorf("CodenameGatewayErrors is not active with half the gateway's calls failing; active alerts: %v", active)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the rules do not see the calls: %v", err)
	}
	t.Logf("the rules saw the calls %v after the first", time.Since(begin).Round(time.Millisecond))

	// Every series a rule reads exists, with the labels it selects on.
	checked := 0
	for _, r := range rules {
		sels := ruleSelectors(r.Query)
		if len(sels) == 0 {
			t.Errorf("found no series in the rule %s: %s", r.Name, r.Query)
		}
		for _, sel := range sels {
			n, err := api.seriesCount(sel)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				t.Errorf("rule %s reads %s, of which the running stack has no series", r.Name, sel)
			}
			checked++
		}
	}
	t.Logf("%d selectors in %d rules, each with series", checked, len(rules))

	// Nothing says that a part is down or full.
	active, err := api.alerts()
	if err != nil {
		t.Fatal(err)
	}
	quiet := []string{"CodenameTargetDown", "CodenameBackendServerDown", "CodenameBackendNoServer", "CodenameConnectionsNearLimit", "CodenameReplicaNearLimit", "CodenameRequestsQueued"}
	for _, a := range active {
		if slices.Contains(quiet, a.Labels["alertname"]) {
			t.Errorf("%s is %s on a healthy stack: %v", a.Labels["alertname"], a.State, a.Labels)
		}
	}
}

// sendCalls sends one round of calls through HAProxy's cleartext
// listener and checks each one's answer.
func sendCalls(grpcClient codenamev1.CodenameCreatorClient, httpClient *http.Client, s *system) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := grpcClient.GetCodename(ctx, &codenamev1.NameRequest{Category: "animals"}); err != nil {
		return fmt.Errorf("gRPC GetCodename: %w", err)
	}
	if _, err := grpcClient.GetCodename(ctx, &codenamev1.NameRequest{Category: "no-such"}); status.Code(err) != codes.InvalidArgument {
		return fmt.Errorf("gRPC GetCodename of an unknown category: %v, want InvalidArgument", err)
	}
	for _, c := range []struct {
		header http.Header
		want   int
	}{
		{nil, http.StatusOK},
		{http.Header{"Grpc-Timeout": {"1n"}}, http.StatusGatewayTimeout},
	} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.httpURL("/v1/codename?category=science"), nil)
		if err != nil {
			return err
		}
		for k, v := range c.header {
			req.Header[k] = v
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			return fmt.Errorf("GET /v1/codename with %v: %s, want %d", c.header, resp.Status, c.want)
		}
	}
	return nil
}

// promAPI is the HTTP API of a Prometheus the test started.
type promAPI struct {
	base   string
	proc   *toolProc
	client *http.Client
}

// get decodes the data of a successful API answer into data.
func (p promAPI) get(path string, query url.Values, data any) error {
	if p.proc.exited() {
		return fmt.Errorf("prometheus exited (%w): %s", poll.ErrGiveUp, outputTail(p.proc.out.String(), 2000))
	}
	resp, err := p.client.Get(p.base + path + "?" + query.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("GET %s: %s, %w", path, resp.Status, err)
	}
	if body.Status != "success" {
		return fmt.Errorf("GET %s %v: %s %s", path, query, resp.Status, body.Error)
	}
	return json.Unmarshal(body.Data, data)
}

// targetsUp fails unless the active targets are exactly want (instance:
// address), each up.
func (p promAPI) targetsUp(want map[string]string) error {
	var data struct {
		ActiveTargets []struct {
			Labels    map[string]string `json:"labels"`
			ScrapeURL string            `json:"scrapeUrl"`
			Health    string            `json:"health"`
			LastError string            `json:"lastError"`
		} `json:"activeTargets"`
	}
	if err := p.get("/api/v1/targets", url.Values{"state": {"active"}}, &data); err != nil {
		return err
	}
	seen := map[string]bool{}
	var problems []string
	for _, tg := range data.ActiveTargets {
		inst := tg.Labels["instance"]
		seen[inst] = true
		switch addr, ok := want[inst]; {
		case !ok:
			problems = append(problems, fmt.Sprintf("unexpected target %v", tg.Labels))
		case tg.ScrapeURL != "http://"+addr+"/metrics":
			problems = append(problems, fmt.Sprintf("%s scrapes %s, want http://%s/metrics", inst, tg.ScrapeURL, addr))
		case tg.Health != "up":
			problems = append(problems, fmt.Sprintf("%s is %s %s", inst, tg.Health, tg.LastError))
		}
	}
	for inst := range want {
		if !seen[inst] {
			problems = append(problems, "no target "+inst)
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// promRule is a loaded rule as the API shows it.
type promRule struct {
	Type  string `json:"type"`
	Name  string `json:"name"`
	Query string `json:"query"`
}

// rules returns every rule Prometheus loaded, failing when it loaded none
// or a rule failed to evaluate.
func (p promAPI) rules(t *testing.T) []promRule {
	t.Helper()
	var data struct {
		Groups []struct {
			Rules []struct {
				promRule
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := p.get("/api/v1/rules", nil, &data); err != nil {
		t.Fatal(err)
	}
	var rules []promRule
	for _, g := range data.Groups {
		for _, r := range g.Rules {
			if r.Health == "err" {
				t.Errorf("rule %s fails: %s", r.Name, r.LastError)
			}
			rules = append(rules, r.promRule)
		}
	}
	if len(rules) == 0 {
		t.Fatal("Prometheus loaded no rules from rules.yml")
	}
	return rules
}

// promSample is one sample of an instant vector.
type promSample struct {
	labels map[string]string
	value  float64
}

func (s promSample) String() string { return fmt.Sprintf("%v %v", s.labels, s.value) }

// query evaluates an instant query that returns a vector.
func (p promAPI) query(q string) ([]promSample, error) {
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	if err := p.get("/api/v1/query", url.Values{"query": {q}}, &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("%s: a %s, want a vector", q, data.ResultType)
	}
	var samples []promSample
	for _, r := range data.Result {
		text, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: sample %v: %w", q, r.Value, err)
		}
		samples = append(samples, promSample{r.Metric, v})
	}
	return samples, nil
}

// seriesCount says how many series match a selector.
func (p promAPI) seriesCount(selector string) (int, error) {
	var data []map[string]string
	if err := p.get("/api/v1/series", url.Values{"match[]": {selector}}, &data); err != nil {
		return 0, err
	}
	return len(data), nil
}

// promAlert is an active (pending or firing) alert.
type promAlert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

func (p promAPI) alerts() ([]promAlert, error) {
	var data struct {
		Alerts []promAlert `json:"alerts"`
	}
	err := p.get("/api/v1/alerts", nil, &data)
	return data.Alerts, err
}

// ruleSelectors returns the series selectors of a PromQL expression as
// Prometheus prints a loaded rule: each metric name with its label
// matchers, such as `up{job=~"haproxy|server"}`. Prometheus 2.53 has no
// API that returns a query's syntax tree, so this reads the few tokens
// the rules' language has: names followed by "(", by or without are
// functions or aggregations, the label lists after by, without, on, ignoring,
// group_left and group_right are skipped, as are ranges in brackets,
// numbers and operators.
func ruleSelectors(query string) []string {
	var sels []string
	labelLists := []string{"by", "without", "on", "ignoring", "group_left", "group_right"}
	keywords := []string{"and", "or", "unless", "bool", "offset", "Inf", "NaN", "inf", "nan"}
	isNameStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isName := func(c byte) bool { return isNameStart(c) || c >= '0' && c <= '9' }
	// skipSpace returns the index of the next byte that is not a space.
	skipSpace := func(i int) int {
		for i < len(query) && strings.IndexByte(" \t\n", query[i]) >= 0 {
			i++
		}
		return i
	}
	// closing returns the index just past the bracket that closes the one
	// at i, skipping quoted strings.
	closing := func(i int, open, closeBy byte) int {
		depth := 0
		for ; i < len(query); i++ {
			switch query[i] {
			case '"', '\'':
				q := query[i]
				for i++; i < len(query) && query[i] != q; i++ {
					if query[i] == '\\' {
						i++
					}
				}
			case open:
				depth++
			case closeBy:
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return i
	}
	for i := 0; i < len(query); {
		c := query[i]
		switch {
		case c == '[':
			i = closing(i, '[', ']')
		case c >= '0' && c <= '9' || c == '.':
			for i < len(query) && (isName(query[i]) || query[i] == '.') {
				i++
			}
		case isNameStart(c):
			j := i
			for j < len(query) && isName(query[j]) {
				j++
			}
			word, next := query[i:j], skipSpace(j)
			k := next
			for k < len(query) && isName(query[k]) {
				k++
			}
			switch {
			case slices.Contains([]string{"by", "without"}, query[next:k]):
				i = next // an aggregation: its label list follows
			case slices.Contains(labelLists, word):
				i = next
				if i < len(query) && query[i] == '(' {
					i = closing(i, '(', ')')
				}
			case slices.Contains(keywords, word):
				i = j
			case next < len(query) && query[next] == '(':
				i = next // a function or an aggregation: its arguments follow
			case next < len(query) && query[next] == '{':
				end := closing(next, '{', '}')
				sels = append(sels, word+query[next:end])
				i = end
			default:
				sels = append(sels, word)
				i = j
			}
		default:
			i++
		}
	}
	return sels
}

// TestRuleSelectors: the selectors of expressions in the form Prometheus
// prints the rules of deploy/prometheus/rules.yml.
func TestRuleSelectors(t *testing.T) {
	for _, c := range []struct {
		query string
		want  []string
	}{
		{`up{job=~"haproxy|server|gateway"} == 0`, []string{`up{job=~"haproxy|server|gateway"}`}},
		{`sum by (job, grpc_method, grpc_code) (rate(grpc_server_handled_total{grpc_service="codename.v1.CodenameCreator"}[1m]))`,
			[]string{`grpc_server_handled_total{grpc_service="codename.v1.CodenameCreator"}`}},
		{`sum by (job, grpc_code) (a:b:rate1m) / ignoring (grpc_code) group_left () sum by (job) (a:b:rate1m)`, []string{"a:b:rate1m", "a:b:rate1m"}},
		{`histogram_quantile(0.99, sum by (job, le) (rate(h_bucket{x="a}b",y!~"1e3"}[1m] offset 5m)))`, []string{`h_bucket{x="a}b",y!~"1e3"}`}},
		{`(sum by (job) (x{c=~"A|B"}) or sum by (job) (x) * 0) / sum without (c) (x)`, []string{`x{c=~"A|B"}`, "x", "x"}},
		{`a > 0.1 or b > 1e-3 and on (job) c`, []string{"a", "b", "c"}},
	} {
		if got := ruleSelectors(c.query); !slices.Equal(got, c.want) {
			t.Errorf("ruleSelectors(%s) = %q, want %q", c.query, got, c.want)
		}
	}
}

// readmeShBlock returns the commands of the ```sh block of README.md whose
// first line starts with prefix, a command continued with a backslash
// joined into one line.
func readmeShBlock(t *testing.T, prefix string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range strings.Split(string(b), "```sh\n")[1:] {
		body, _, ok := strings.Cut(part, "```")
		if !ok || !strings.HasPrefix(body, prefix) {
			continue
		}
		var cmds []string
		for _, line := range strings.Split(strings.ReplaceAll(body, "\\\n", " "), "\n") {
			if line = strings.Join(strings.Fields(line), " "); line != "" {
				cmds = append(cmds, line)
			}
		}
		return cmds
	}
	t.Fatalf("README.md has no sh block starting with %q", prefix)
	return nil
}

// swapAll replaces each key of swap in cmd, failing when one is missing:
// the README and this test name the same addresses.
func swapAll(t *testing.T, cmd string, swap map[string]string) string {
	t.Helper()
	for from, to := range swap {
		if !strings.Contains(cmd, from) {
			t.Fatalf("README: %s does not name %s", cmd, from)
		}
		cmd = strings.ReplaceAll(cmd, from, to)
	}
	return cmd
}

// readmeRun runs one README command with bash in the repository, the
// addresses in swap that it names replaced, and returns its output.
func readmeRun(cmd string, swap map[string]string) (string, error) {
	for from, to := range swap {
		cmd = strings.ReplaceAll(cmd, from, to)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, "bash", "-c", cmd)
	c.Dir = repoRoot
	out, err := c.CombinedOutput()
	return string(out), err
}
