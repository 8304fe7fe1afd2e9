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
