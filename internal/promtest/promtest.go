// Package promtest reads the Prometheus text exposition that the servers,
// gateways and HAProxy serve at /metrics, for tests that check a metric's
// value from the outside.
package promtest

import (
	"maps"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Sum adds up the samples of the counter, gauge or untyped metric name
// whose labels include labels, and reports whether any sample matched. For
// a histogram or summary h, name may be h_count or h_sum, and for a
// histogram h_bucket, with the bucket's "le" among labels. Text that does
// not parse matches nothing.
func Sum(text, name string, labels map[string]string) (float64, bool) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return 0, false
	}
	family, part := families[name], ""
	for _, suffix := range []string{"_count", "_sum", "_bucket"} {
		if base, ok := strings.CutSuffix(name, suffix); family == nil && ok {
			family, part = families[base], suffix
		}
	}
	if family == nil {
		return 0, false
	}
	le := labels["le"]
	if part == "_bucket" {
		labels = maps.Clone(labels)
		delete(labels, "le") // a bucket's bound, not a label of the metric
	}
	var sum float64
	found := false
	for _, m := range family.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		if part == "_bucket" {
			n, ok := bucket(m.GetHistogram(), le)
			if !ok {
				continue
			}
			sum, found = sum+n, true
			continue
		}
		switch {
		case m.GetCounter() != nil:
			sum += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			sum += m.GetGauge().GetValue()
		case m.GetUntyped() != nil:
			sum += m.GetUntyped().GetValue()
		case m.GetHistogram() != nil && part == "_count":
			sum += float64(m.GetHistogram().GetSampleCount())
		case m.GetHistogram() != nil && part == "_sum":
			sum += m.GetHistogram().GetSampleSum()
		case m.GetSummary() != nil && part == "_count":
			sum += float64(m.GetSummary().GetSampleCount())
		case m.GetSummary() != nil && part == "_sum":
			sum += m.GetSummary().GetSampleSum()
		default:
			continue
		}
		found = true
	}
	return sum, found
}

// bucket returns the cumulative count of h's bucket whose upper bound is
// le; "+Inf" is the count of all samples.
func bucket(h *dto.Histogram, le string) (float64, bool) {
	if h == nil {
		return 0, false
	}
	if le == "+Inf" {
		return float64(h.GetSampleCount()), true
	}
	bound, err := strconv.ParseFloat(le, 64)
	if err != nil {
		return 0, false
	}
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == bound {
			return float64(b.GetCumulativeCount()), true
		}
	}
	return 0, false
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	have := make(map[string]string, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}
