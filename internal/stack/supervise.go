package stack

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/codename-gateway/codename-gateway/internal/poll"
)

// Process is one child of the stack.
type Process struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	argv []string
	env  []string
	// stopping is set when we stop the child, so that its exit is not
	// reported as a failure.
	stopping atomic.Bool
}

// PID returns the child's process ID.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed when the child has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err returns how the child exited, once Done is closed.
func (p *Process) Err() error { return p.err }

// Signal sends sig to the child.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

func (s *Stack) start(name string, argv, env []string) (*Process, error) {
	run := argv
	if s.cfg.Netns != nil {
		if ns := s.cfg.Netns(name); ns != "" {
			run = append([]string{"ip", "netns", "exec", ns}, argv...)
		}
	}
	cmd := exec.Command(run[0], run[1:]...)
	cmd.Env = env
	dst := s.cfg.Output
	if name == "haproxy" {
		dst = s.loaded
	}
	out := newPrefixWriter(dst, name)
	cmd.Stdout, cmd.Stderr = out, out
	p := &Process{Name: name, cmd: cmd, done: make(chan struct{}), argv: argv, env: env}
	if name == "haproxy" {
		out.drop = func(line []byte) bool { return p.stopping.Load() && haproxyStopLine.Match(line) }
	}
	// Pdeathsig: the children die with us even if we are killed without a
	// chance to stop them. Setpgid: a Ctrl-C in the terminal reaches only
	// us, so that Stop can stop the children in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		out.Flush()
		close(p.done)
		if !p.stopping.Load() {
			select {
			case s.exited <- p:
			default:
			}
		}
	}()
	return p, nil
}

// Reload makes HAProxy reload its configuration and certificates: the
// master starts new workers, and the old ones finish what they hold. It
// returns once the master has acknowledged the signal ("Reloading
// HAProxy"); it does not wait for the new workers. HAProxy 2.6's master
// now and then drops a SIGUSR2 that arrives soon after a reload on a busy
// machine (seen in TestHitlessReloads with the cores saturated), so an
// unacknowledged signal is sent again, as an operator would.
func (s *Stack) Reload() error {
	want := s.reloads.seen.Load() + 1
	for range 3 {
		if err := s.Process("haproxy").Signal(syscall.SIGUSR2); err != nil {
			return err
		}
		if _, ok := poll.Until(2*time.Second, func() bool { return s.reloads.seen.Load() >= want }); ok {
			return nil
		}
	}
	return errors.New("HAProxy did not acknowledge three SIGUSR2 in 6 s")
}

// Process returns the child called name ("server-1", "gateway-1", ...,
// "haproxy").
func (s *Stack) Process(name string) *Process {
	for _, p := range s.procs {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Restart stops the child called name with SIGTERM (killing it after 15
// seconds) and starts it again with the same arguments and environment, as
// a deployment would replace a process. It does not wait for readiness.
func (s *Stack) Restart(name string) (*Process, error) {
	for i, p := range s.procs {
		if p.Name != name {
			continue
		}
		if err := stop(p); err != nil {
			return nil, err
		}
		np, err := s.start(p.Name, p.argv, p.env)
		if err != nil {
			return nil, err
		}
		s.procs[i] = np
		return np, nil
	}
	return nil, fmt.Errorf("no process called %s", name)
}

// Exited receives the first child that exits before Stop is called.
func (s *Stack) Exited() <-chan *Process { return s.exited }

// Stop sends SIGTERM to every child, HAProxy first so that no new request
// arrives while the others drain, waits for them, and kills any that has
// not exited after 15 seconds. It is safe to call more than once.
func (s *Stack) Stop() error {
	var errs []error
	for i := len(s.procs) - 1; i >= 0; i-- {
		if err := stop(s.procs[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stop sends p SIGTERM and waits for it to exit, killing it after 15 s.
func stop(p *Process) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	p.stopping.Store(true)
	_ = p.Signal(syscall.SIGTERM)
	timer := time.NewTimer(15 * time.Second)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop on SIGTERM and was killed", p.Name)
	}
}

// noticeWriter passes output on and counts the writes that held needle.
type noticeWriter struct {
	w      io.Writer
	needle []byte
	seen   atomic.Int64
}

func (n *noticeWriter) Write(b []byte) (int, error) {
	if bytes.Contains(b, n.needle) {
		n.seen.Add(1)
	}
	return n.w.Write(b)
}
