package tuning

import (
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/codename-gateway/codename-gateway/internal/envflag"
)

func TestCoreShare(t *testing.T) {
	for _, tt := range []struct{ cores, share, want int }{
		{2, 3, 1},  // the server, the gateway and HAProxy on 2 cores
		{3, 3, 1},  // a core each
		{8, 3, 2},  // 8 cores among 3 processes
		{16, 5, 3}, // 16 among 5
		{4, 9, 1},  // never below one
		{8, 2, 4},  // co-located: a server and HAProxy
	} {
		if got := coreShare(tt.cores, tt.share); got != tt.want {
			t.Errorf("coreShare(%d cores, %d processes) = %d, want %d", tt.cores, tt.share, got, tt.want)
		}
	}
	if got, want := GoMaxProcs(3), coreShare(runtime.NumCPU(), 3); got != want {
		t.Errorf("GoMaxProcs(3) = %d, want %d on %d cores", got, want, runtime.NumCPU())
	}
}

// env is a getenv that knows only kv's variables.
func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

// restore puts the runtime's settings back as they were when the test ends.
func restore(t *testing.T) {
	gc, procs := debug.SetGCPercent(100), runtime.GOMAXPROCS(0)
	t.Cleanup(func() {
		debug.SetGCPercent(gc)
		runtime.GOMAXPROCS(procs)
	})
}

func TestApplyGCPercent(t *testing.T) {
	restore(t)
	if err := Apply(env(nil), 0); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetGCPercent(100); got != GCPercent {
		t.Errorf("with GOGC unset the GC percent is %d, want %d", got, GCPercent)
	}
	if err := Apply(env(map[string]string{"GOGC": "50"}), 0); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set the GC percent was changed to %d, want it left alone", got)
	}
}

func TestApplyShare(t *testing.T) {
	restore(t)
	const share = 2
	for _, tt := range []struct {
		name  string
		env   map[string]string
		share int
		want  int
	}{
		{name: "no share: Go's own", share: 0, want: 64},
		{name: "a share of the cores", share: share, want: GoMaxProcs(share)},
		{name: "GOMAXPROCS wins", env: map[string]string{"GOMAXPROCS": "3"}, share: share, want: 64},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// 64 stands for what the runtime had: Apply must leave it.
			runtime.GOMAXPROCS(64)
			if err := Apply(env(tt.env), tt.share); err != nil {
				t.Fatal(err)
			}
			if got := runtime.GOMAXPROCS(0); got != tt.want {
				t.Errorf("GOMAXPROCS = %d, want %d", got, tt.want)
			}
		})
	}
	if err := Apply(env(nil), -1); err == nil {
		t.Error("a negative share: no error")
	}
}

// TestFlags: -cpu-share reads ShareEnv, and the help names the runtime's
// own variables, which win.
func TestFlags(t *testing.T) {
	fs := envflag.New("test", env(map[string]string{ShareEnv: "4"}), io.Discard)
	share := Flags(fs)
	if err := fs.Parse([]string{}); err != nil {
		t.Fatal(err)
	}
	if *share != 4 {
		t.Errorf("-cpu-share = %d with %s=4, want 4", *share, ShareEnv)
	}
	var help strings.Builder
	fs.PrintHelp(&help)
	for _, want := range []string{"-cpu-share int   $" + ShareEnv, "$GOGC", "$GOMAXPROCS"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("help does not name %q:\n%s", want, help.String())
		}
	}
}
