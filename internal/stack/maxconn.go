package stack

import "syscall"

// publicMaxConn lowers haproxy.cfg's default for its public frontend's
// connections (4000) when this process's file descriptor limit is too low
// for it: HAProxy sizes its global maxconn from that limit (two
// descriptors per proxied connection), and the public frontend must stay
// below it so that the stats listener always has room.
func publicMaxConn() (int, bool) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, false
	}
	n := int(lim.Cur/2) - 200
	if n >= 4000 {
		return 0, false
	}
	return max(n, 100), true
}
