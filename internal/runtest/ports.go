package runtest

import (
	"context"
	"io"
	"net"
	"testing"
)

// CheckPortTaken calls run once for each listener flag in flags, with
// that flag's address a port another socket holds and the other flags'
// a free port, after args (args[0] is the program's name); check, in a
// subtest named after the flag, judges what run returned.
func CheckPortTaken(t *testing.T, run RunFunc, args, flags []string, check func(t *testing.T, flag, taken string, err error)) {
	t.Helper()
	holder, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	taken := holder.Addr().String()
	for _, flag := range flags {
		t.Run(flag, func(t *testing.T) {
			argv := args
			for _, f := range flags {
				addr := "127.0.0.1:0"
				if f == flag {
					addr = taken
				}
				argv = append(argv[:len(argv):len(argv)], f, addr)
			}
			ctx, cancel := context.WithTimeout(t.Context(), Timeout)
			defer cancel()
			check(t, flag, taken, run(ctx, argv, func(string) string { return "" }, io.Discard))
		})
	}
}
