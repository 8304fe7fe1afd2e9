package promtest

import "testing"

const exposition = `# HELP calls_total Calls.
# TYPE calls_total counter
calls_total{code="OK",method="Get"} 3
calls_total{code="OK",method="List"} 2
calls_total{code="NotFound",method="Get"} 1
# TYPE open gauge
open 4
# TYPE seconds histogram
seconds_bucket{le="0.1"} 4
seconds_bucket{le="+Inf"} 6
seconds_sum 1.5
seconds_count 6
`

func TestSum(t *testing.T) {
	tests := []struct {
		name    string
		metric  string
		labels  map[string]string
		want    float64
		wantHit bool
	}{
		{"all samples", "calls_total", nil, 6, true},
		{"one label", "calls_total", map[string]string{"code": "OK"}, 5, true},
		{"two labels", "calls_total", map[string]string{"code": "OK", "method": "Get"}, 3, true},
		{"no sample matches", "calls_total", map[string]string{"code": "Internal"}, 0, false},
		{"gauge", "open", nil, 4, true},
		{"a name that is only a prefix", "calls", nil, 0, false},
		{"a histogram's count", "seconds_count", nil, 6, true},
		{"a histogram's sum", "seconds_sum", nil, 1.5, true},
		{"a histogram's last bucket", "seconds_bucket", map[string]string{"le": "+Inf"}, 6, true},
		{"a histogram's first bucket", "seconds_bucket", map[string]string{"le": "0.1"}, 4, true},
		{"a bucket that is not there", "seconds_bucket", map[string]string{"le": "0.5"}, 0, false},
		{"a histogram itself is no number", "seconds", nil, 0, false},
		{"unknown metric", "nope", nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, hit := Sum(exposition, tt.metric, tt.labels)
			if got != tt.want || hit != tt.wantHit {
				t.Errorf("Sum(%s, %v) = %v, %v; want %v, %v", tt.metric, tt.labels, got, hit, tt.want, tt.wantHit)
			}
		})
	}
	if _, hit := Sum("not { exposition", "calls_total", nil); hit {
		t.Error("garbage text matched")
	}
}
