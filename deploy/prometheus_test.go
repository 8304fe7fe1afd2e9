package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// promtool is Debian's promtool, which scripts/setup.sh (test) unpacks
// into bin/ with scripts/prometheus-debian.sh.
func promtool(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := filepath.Abs(filepath.Join(repoRoot, "bin", "promtool"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("promtool is missing (scripts/setup.sh test installs it into bin/): %v", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = "prometheus"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestPrometheusConfigChecks: promtool accepts the scrape config, with the
// rule files and the run command's target files it names, and the rules.
func TestPrometheusConfigChecks(t *testing.T) {
	out := promtool(t, "check", "config", "prometheus.yml")
	for _, want := range []string{"SUCCESS: 1 rule files found", "SUCCESS: prometheus.yml is valid prometheus config file syntax"} {
		if !strings.Contains(out, want) {
			t.Errorf("promtool check config printed no %q:\n%s", want, out)
		}
	}
	rules := readRules(t)
	out = promtool(t, "check", "rules", "rules.yml")
	if want := fmt.Sprintf("SUCCESS: %d rules found", len(rules.alerts)+len(rules.records)); !strings.Contains(out, want) {
		t.Errorf("promtool check rules printed no %q:\n%s", want, out)
	}
}

// TestPrometheusRulesUnitTests runs rules_test.yml.
func TestPrometheusRulesUnitTests(t *testing.T) {
	out := promtool(t, "test", "rules", "rules_test.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules did not succeed:\n%s", out)
	}
}

// TestEveryRuleIsTested fails when an alert lacks `for:`, a severity or a
// summary, when rules_test.yml has no case in which it fires and one in
// which it does not, or when a recording rule is not evaluated there.
func TestEveryRuleIsTested(t *testing.T) {
	rules := readRules(t)
	if len(rules.alerts) < 5 || len(rules.records) < 5 {
		t.Fatalf("rules.yml has %d alerts and %d recording rules; want the golden signals", len(rules.alerts), len(rules.records))
	}
	for _, a := range rules.alerts {
		if a.For == "" {
			t.Errorf("alert %s has no for:, so one bad scrape would fire it", a.Alert)
		}
		if s := a.Labels["severity"]; s != "critical" && s != "warning" {
			t.Errorf("alert %s has severity %q, want critical or warning", a.Alert, s)
		}
		if a.Annotations["summary"] == "" {
			t.Errorf("alert %s has no summary", a.Alert)
		}
	}

	b, err := os.ReadFile("prometheus/rules_test.yml")
	if err != nil {
		t.Fatal(err)
	}
	var tests struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			Name   string `yaml:"name"`
			Alerts []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
			Exprs []struct {
				Expr string `yaml:"expr"`
			} `yaml:"promql_expr_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(b, &tests); err != nil {
		t.Fatalf("rules_test.yml: %v", err)
	}
	if !slices.Equal(tests.RuleFiles, []string{"rules.yml"}) {
		t.Errorf("rules_test.yml tests %v, want [rules.yml]", tests.RuleFiles)
	}
	fires, quiet, evaluated := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.Alerts {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
		for _, e := range tc.Exprs {
			evaluated[strings.TrimSpace(e.Expr)] = true
		}
	}
	for _, a := range rules.alerts {
		if !fires[a.Alert] {
			t.Errorf("rules_test.yml has no case in which %s fires", a.Alert)
		}
		if !quiet[a.Alert] {
			t.Errorf("rules_test.yml has no case in which %s does not fire", a.Alert)
		}
	}
	for _, r := range rules.records {
		if !evaluated[r.Record] {
			t.Errorf("rules_test.yml does not evaluate the recording rule %s", r.Record)
		}
	}
}

// rule is one rule of rules.yml.
type rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type ruleSet struct{ alerts, records []rule }

func readRules(t *testing.T) ruleSet {
	t.Helper()
	b, err := os.ReadFile("prometheus/rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatalf("rules.yml: %v", err)
	}
	var s ruleSet
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				s.alerts = append(s.alerts, r)
			} else {
				s.records = append(s.records, r)
			}
		}
	}
	return s
}
