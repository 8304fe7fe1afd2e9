package e2e

import (
	"fmt"
	"testing"

	"github.com/codename-gateway/codename-gateway/internal/stack"
)

// The suite runs in either gateway mode ($CODENAME_GATEWAY_MODE, read by
// the stack): a client must see the same either way. Tests that are about
// which process serves REST ask these helpers instead of naming
// gateway-N, so that one test covers both modes.

// colocated reports whether the stack serves REST from inside the servers.
// The stack, not the environment, is asked: it starts a gateway process
// only in the separate mode.
func (s *system) colocated() bool { return s.Process("gateway-1") == nil }

// restName names the child that serves REST for replica i (1-based), as
// its log lines are prefixed: gateway-i, or co-located, server-i.
func (s *system) restName(i int) string {
	if s.colocated() {
		return fmt.Sprintf("server-%d", i)
	}
	return fmt.Sprintf("gateway-%d", i)
}

// restProcess is the child that serves REST for replica i; stopping it
// stops that replica's REST listener.
func (s *system) restProcess(t testing.TB, i int) *stack.Process {
	t.Helper()
	p := s.Process(s.restName(i))
	if p == nil {
		t.Fatalf("no process %s serves REST for replica %d", s.restName(i), i)
	}
	return p
}

// restAdminAddr is where replica i's gateway serves its metrics to
// operators: the gateway's admin listener, or co-located, the server's.
func (s *system) restAdminAddr(i int) string {
	if s.colocated() {
		return s.cfg.GRPCAdminAddrs[i-1]
	}
	return s.cfg.GatewayAdminAddrs[i-1]
}

// waitRESTLine waits for a line of replica i's gateway log holding every
// one of parts. Both modes tag those lines component=gateway, which tells
// them apart from a co-located server's own lines.
func (s *system) waitRESTLine(t *testing.T, i int, parts ...string) string {
	t.Helper()
	return s.waitLine(t, s.restName(i), append([]string{"component=gateway"}, parts...)...)
}

// restLine is the first line of replica i's gateway log holding every one
// of parts, or "" if there is none yet.
func (s *system) restLine(i int, parts ...string) string {
	return s.logLine(s.restName(i), append([]string{"component=gateway"}, parts...)...)
}
