package envflag

import (
	"io"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestPrecedence(t *testing.T) {
	env := map[string]string{"ADDR": "from-env:1", "EVERY": "3s"}
	tests := []struct {
		name      string
		args      []string
		wantAddr  string
		wantEvery time.Duration
	}{
		{name: "defaults when neither is set", args: nil, wantAddr: "from-env:1", wantEvery: 3 * time.Second},
		{name: "flag beats environment", args: []string{"-addr", "from-flag:2", "-every", "5s"}, wantAddr: "from-flag:2", wantEvery: 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New("test", func(k string) string { return env[k] }, io.Discard)
			addr := s.String("addr", "ADDR", "default:0", "address")
			every := s.Duration("every", "EVERY", time.Second, "interval")
			if err := s.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if *addr != tt.wantAddr || *every != tt.wantEvery {
				t.Errorf("got %q %v, want %q %v", *addr, *every, tt.wantAddr, tt.wantEvery)
			}
		})
	}
}

func TestDefaultWhenEnvUnset(t *testing.T) {
	s := New("test", func(string) string { return "" }, io.Discard)
	n := s.Int("n", "N", 7, "count")
	if err := s.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if *n != 7 {
		t.Errorf("got %d, want 7", *n)
	}
}

func TestMalformedEnvIsAnError(t *testing.T) {
	s := New("test", func(string) string { return "soon" }, io.Discard)
	s.Duration("every", "EVERY", time.Second, "interval")
	err := s.Parse(nil)
	if err == nil || !strings.Contains(err.Error(), `EVERY="soon"`) {
		t.Fatalf("got %v, want an error naming EVERY and its value", err)
	}
}

func TestGCPercent(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	GCPercent(func(string) string { return "" }, 200)
	if got := debug.SetGCPercent(100); got != 200 {
		t.Errorf("with GOGC unset the GC percent is %d, want 200", got)
	}
	GCPercent(func(k string) string {
		if k == "GOGC" {
			return "50"
		}
		return ""
	}, 200)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set the GC percent was changed to %d, want it left alone", got)
	}
}
