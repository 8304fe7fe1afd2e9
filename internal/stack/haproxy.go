package stack

import "os"

// HAProxyBinary is the haproxy executable a stack runs unless told
// otherwise: $CODENAME_HAPROXY, such as bin/haproxy-3.2 that
// scripts/setup.sh installs from Debian's archive, or else "haproxy" on
// PATH (the system's package). The run command, the tests and the
// benchmark all read it, so one variable switches every one of them.
func HAProxyBinary() string {
	if path := os.Getenv("CODENAME_HAPROXY"); path != "" {
		return path
	}
	return "haproxy"
}
