package stack

import "testing"

func TestGatewayMode(t *testing.T) {
	for _, tt := range []struct {
		value, want string
		wantErr     bool
	}{
		{value: "", want: Separate},
		{value: "separate", want: Separate},
		{value: "colocated", want: Colocated},
		{value: "co-located", wantErr: true},
		{value: "Colocated", wantErr: true},
	} {
		got, err := gatewayMode(tt.value)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("gatewayMode(%q) = %q, %v; want %q (error: %v)", tt.value, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestGoProcesses(t *testing.T) {
	for _, tt := range []struct {
		mode           string
		replicas, want int
	}{
		{Separate, 1, 2},
		{Separate, 3, 6},
		{Colocated, 1, 1}, // the gateway lives in the server
		{Colocated, 3, 3},
	} {
		if got := goProcesses(tt.mode, tt.replicas); got != tt.want {
			t.Errorf("goProcesses(%s, %d) = %d, want %d", tt.mode, tt.replicas, got, tt.want)
		}
	}
	if got, want := goMaxProcsFor(Separate, 2), GoMaxProcs(2); got != want {
		t.Errorf("goMaxProcsFor(separate, 2) = %d, want GoMaxProcs's %d", got, want)
	}
}
