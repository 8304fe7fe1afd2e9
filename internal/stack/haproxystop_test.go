package stack

import "testing"

// TestHAProxyStopLine: the lines HAProxy 2.6 and 3.x print when SIGTERM
// stops them (seen on both) are recognised; a worker that died any other
// way, or any other message, is not.
func TestHAProxyStopLine(t *testing.T) {
	for _, tt := range []struct {
		line string
		drop bool
	}{
		{"[NOTICE]   (29851) : haproxy version is 2.6.12-1+deb12u4", true},
		{"[NOTICE]   (25445) : path to executable is bin/haproxy-3.2", true},
		{"[WARNING]  (29851) : Exiting Master process...", true},
		{"[ALERT]    (29851) : Current worker (29883) exited with code 143 (Terminated)", true},
		{"[WARNING]  (29851) : Former worker (29883) exited with code 143 (Terminated)", true},
		{"[WARNING]  (29851) : All workers exited. Exiting... (0)", true},
		{"[ALERT]    (29851) : Current worker (29883) exited with code 139 (Segmentation fault)", false},
		{"[ALERT]    (29851) : Current worker (29883) exited with code 1 (Exit)", false},
		{"[WARNING]  (29851) : All workers exited. Exiting... (1)", false},
		{"[ALERT]    (26162) : Binding [haproxy/haproxy.cfg:270] for frontend fe_main: protocol tcpv4: cannot bind socket (Address already in use) for [127.0.0.1:18443].", false},
		{"[NOTICE]   (29851) : New worker (29883) forked", false},
		{"127.0.0.1:43654 [02/Dec/2026:00:27:54.451] fe_main be_rest/gw1 GET /healthz HTTP/1.1 ct=\"-\" key=- 200 +109 ----", false},
	} {
		if got := haproxyStopLine.MatchString(tt.line); got != tt.drop {
			t.Errorf("%q: dropped %v, want %v", tt.line, got, tt.drop)
		}
	}
}
