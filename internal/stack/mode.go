package stack

import "fmt"

// GatewayModeEnv names the setting that picks where the REST gateway runs.
const GatewayModeEnv = "CODENAME_GATEWAY_MODE"

// The gateway modes. Either way HAProxy's config is the same: its gateway
// backend points at the addresses in CODENAME_GATEWAY_ADDR..., which are a
// gateway process's listeners in one mode and the servers' REST listeners
// in the other.
const (
	// Separate runs a codename-gateway process per replica, which calls
	// the servers over the network: the two sides scale, restart and fail
	// apart.
	Separate = "separate"
	// Colocated runs the gateway inside each codename-server
	// (-rest-addr): no gateway process, no network hop, unary REST calls
	// in process.
	Colocated = "colocated"
)

// gatewayMode reads CODENAME_GATEWAY_MODE; unset is Separate, the mode that
// the end-to-end tests and the benchmark were written for (the run command
// picks its own default).
func gatewayMode(v string) (string, error) {
	switch v {
	case "", Separate:
		return Separate, nil
	case Colocated:
		return Colocated, nil
	}
	return "", fmt.Errorf("%s=%q: want %s or %s", GatewayModeEnv, v, Separate, Colocated)
}
