package logtest_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/codename-gateway/codename-gateway/internal/logtest"
)

func TestRecorder(t *testing.T) {
	logs := new(logtest.Recorder)
	log := slog.New(logs)
	log.Info("finished call", "method", "GetCodename", "code", "OK")
	log.Info("finished call", "method", "GetCodename", "code", "Canceled")
	log.Warn("drain timed out")

	if got := len(logs.Find("finished call")); got != 2 {
		t.Errorf("Find = %d records, want 2", got)
	}
	if !logs.Has("drain timed out") || logs.Has("nothing") {
		t.Error("Has does not tell logged messages from others")
	}
	for _, tc := range []struct {
		attrs map[string]string
		want  int
	}{
		{nil, 2},
		{map[string]string{"method": "GetCodename"}, 2},
		{map[string]string{"method": "GetCodename", "code": "OK"}, 1},
		{map[string]string{"code": "Internal"}, 0},
	} {
		if got := logs.Count("finished call", tc.attrs); got != tc.want {
			t.Errorf("Count(%v) = %d, want %d", tc.attrs, got, tc.want)
		}
	}
	logs.WaitFor(t, "finished call", map[string]string{"code": "Canceled"})

	recs := logs.Take()
	if len(recs) != 3 {
		t.Fatalf("Take = %d records, want 3", len(recs))
	}
	if got := logtest.Attrs(recs[1])["code"].String(); got != "Canceled" {
		t.Errorf("Attrs(second record)[code] = %q, want Canceled", got)
	}
	if recs := logs.Take(); len(recs) != 0 {
		t.Errorf("second Take = %d records, want none", len(recs))
	}
}

// TestWaitForLater checks that WaitFor sees a record logged after it began
// to wait, as a call's line is logged after its client has the answer.
func TestWaitForLater(t *testing.T) {
	logs := new(logtest.Recorder)
	timer := time.AfterFunc(50*time.Millisecond, func() { slog.New(logs).Info("request", "path", "/v1/codename") })
	defer timer.Stop()
	logs.WaitFor(t, "request", map[string]string{"path": "/v1/codename"})
}
