package stack

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// DialContext returns a dial function whose connections come from the host
// called name, with its address, as a client on that host would make them.
// A socket stays in the namespace it was made in, so each dial makes its
// socket on a thread of its own that enters the host's namespace and then
// returns to this one.
func (n *Network) DialContext(name string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	path := filepath.Join("/var/run/netns", n.Host(name).Netns)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type dialed struct {
			c   net.Conn
			err error
		}
		done := make(chan dialed, 1)
		go func() {
			c, err := dialIn(ctx, path, network, addr)
			done <- dialed{c, err}
		}()
		d := <-done
		return d.c, d.err
	}
}

// dialIn dials from the network namespace at path. It locks its thread;
// if the thread cannot return to its own namespace it is left locked, so
// that Go retires it instead of running other goroutines in the wrong
// namespace.
func dialIn(ctx context.Context, path, network, addr string) (net.Conn, error) {
	runtime.LockOSThread()
	own, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer own.Close()
	target, err := os.Open(path)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("enter %s: %w", path, err)
	}
	c, dialErr := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); err != nil {
		if c != nil {
			c.Close()
		}
		return nil, fmt.Errorf("return from %s: %w", path, err)
	}
	runtime.UnlockOSThread()
	return c, dialErr
}
