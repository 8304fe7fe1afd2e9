package stack

import (
	"io"
	"runtime"
	"strings"
	"testing"
)

func TestGoMaxProcsShareTheCores(t *testing.T) {
	for replicas := 1; replicas <= MaxReplicas; replicas++ {
		got := GoMaxProcs(replicas)
		if got < 1 {
			t.Errorf("GoMaxProcs(%d) = %d, want at least 1", replicas, got)
		}
		// 2*replicas Go processes and HAProxy together stay within the
		// cores, unless each already has the minimum of one.
		if got > 1 && got*(2*replicas+1) > runtime.NumCPU() {
			t.Errorf("GoMaxProcs(%d) = %d: %d processes would use more than the %d cores", replicas, got, 2*replicas+1, runtime.NumCPU())
		}
	}
}

func TestPortTakenWriterSpotsBothWordings(t *testing.T) {
	for _, line := range []string{
		"haproxy | [ALERT]    (1) : Binding [haproxy.cfg:98] for frontend fe_main: cannot bind socket (Address already in use) for [127.0.0.1:36639]\n",
		"server-1 | codename-server: listen tcp 127.0.0.1:35706: bind: address already in use\n",
	} {
		var out strings.Builder
		w := &portTakenWriter{w: &out}
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
		if !w.taken.Load() {
			t.Errorf("%q: not seen as a taken port", line)
		}
		if out.String() != line {
			t.Errorf("passed on %q, want %q", out.String(), line)
		}
	}
	w := &portTakenWriter{w: io.Discard}
	_, _ = w.Write([]byte("gateway-1 | level=INFO msg=\"serving REST\"\n"))
	if w.taken.Load() {
		t.Error("an ordinary line was seen as a taken port")
	}
}
