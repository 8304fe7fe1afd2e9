package stack

import (
	"io"
	"strings"
	"testing"
)

func TestNoticeWriterSpotsBothWordingsOfATakenPort(t *testing.T) {
	for _, line := range []string{
		"haproxy | [ALERT]    (1) : Binding [haproxy.cfg:98] for frontend fe_main: cannot bind socket (Address already in use) for [127.0.0.1:36639]\n",
		"server-1 | codename-server: listen tcp 127.0.0.1:35706: bind: address already in use\n",
	} {
		var out strings.Builder
		w := &noticeWriter{w: &out, needle: portTaken}
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
		if w.seen.Load() != 1 {
			t.Errorf("%q: not seen as a taken port", line)
		}
		if out.String() != line {
			t.Errorf("passed on %q, want %q", out.String(), line)
		}
	}
	w := &noticeWriter{w: io.Discard, needle: portTaken}
	_, _ = w.Write([]byte("gateway-1 | level=INFO msg=\"serving REST\"\n"))
	if w.seen.Load() != 0 {
		t.Error("an ordinary line was seen as a taken port")
	}
}
