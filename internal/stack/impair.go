package stack

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Impairment delays and drops the frames on one host's link, both ways,
// as `tc qdisc ... netem delay D loss P%` on each end would. Kernels
// without sch_netem (this project's CI machine has none) cannot do that,
// so the link is cut in two and a relay here carries the frames across,
// late or not at all.
type Impairment struct {
	once sync.Once
	err  error
	stop chan struct{}
	wg   sync.WaitGroup
	// mu guards fds against the delayed sends: once Close has closed
	// them, their numbers may belong to other files.
	mu     sync.RWMutex
	closed bool
	fds    []int
	undo   func() error
}

// Impair puts an Impairment on the link of the host called name. Frames
// smaller than the MTU are needed to relay them one by one, with their
// checksums filled in, so it turns off the offloads (ethtool) of every
// host's interface first.
func (n *Network) Impair(name string, delay time.Duration, lossPercent int) (*Impairment, error) {
	i := slices.IndexFunc(n.hosts, func(h Host) bool { return h.Name == name })
	if i < 0 {
		return nil, fmt.Errorf("no host called %s", name)
	}
	suffix := strings.TrimPrefix(n.Bridge, "cgbr")
	outside := fmt.Sprintf("cg%s-%d", suffix, i)
	// The relay's pair: a joins the bridge in outside's place, b faces
	// outside across the relay.
	a, b := fmt.Sprintf("cg%sa%d", suffix, i), fmt.Sprintf("cg%sb%d", suffix, i)
	for _, h := range n.hosts {
		if err := noOffloads(h.Netns, "eth0"); err != nil {
			return nil, err
		}
	}
	if err := ipCmds(
		[]string{"link", "set", outside, "nomaster"},
		[]string{"link", "add", a, "type", "veth", "peer", "name", b},
		[]string{"link", "set", a, "master", n.Bridge, "up"},
		[]string{"link", "set", b, "up"},
	); err != nil {
		return nil, err
	}
	im := &Impairment{stop: make(chan struct{}), undo: func() error {
		return ipCmds([]string{"link", "del", a}, []string{"link", "set", outside, "master", n.Bridge})
	}}
	// The relay's pair lives in this namespace, which removing the hosts'
	// namespaces does not clear: the Network's Close ends it too.
	n.impairments = append(n.impairments, im)
	fail := func(err error) (*Impairment, error) { return nil, errors.Join(err, im.Close()) }
	var ends [2]end
	// This namespace's side too: the bridge (this namespace's own frames
	// to the host) and every interface of the relay.
	for _, dev := range []string{n.Bridge, a, b, outside} {
		if err := noOffloads("", dev); err != nil {
			return fail(err)
		}
	}
	for k, dev := range []string{outside, b} {
		e, err := openEnd(dev)
		if err != nil {
			return fail(err)
		}
		im.fds = append(im.fds, e.fd)
		ends[k] = e
	}
	for k := range ends {
		im.wg.Add(1)
		go im.relay(ends[k], ends[1-k], delay, lossPercent)
	}
	return im, nil
}

// Close stops the relay and gives the host its link back as it was. It is
// safe to call more than once; the Network's Close calls it too.
func (im *Impairment) Close() error {
	im.once.Do(func() {
		close(im.stop)
		im.wg.Wait()
		im.mu.Lock()
		im.closed = true
		for _, fd := range im.fds {
			syscall.Close(fd)
		}
		im.mu.Unlock()
		im.err = im.undo()
	})
	return im.err
}

// end is one side of the relay: a raw socket on one interface.
type end struct {
	fd      int
	ifindex int
}

func openEnd(dev string) (end, error) {
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return end{}, err
	}
	const ethPAll = 0x0003
	proto := int(htons(ethPAll))
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, proto)
	if err != nil {
		return end{}, fmt.Errorf("raw socket on %s: %w", dev, err)
	}
	// Reads wake up now and then, so that the relay sees Close.
	tv := syscall.NsecToTimeval(int64(100 * time.Millisecond))
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		syscall.Close(fd)
		return end{}, err
	}
	if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifi.Index}); err != nil {
		syscall.Close(fd)
		return end{}, fmt.Errorf("bind to %s: %w", dev, err)
	}
	return end{fd: fd, ifindex: ifi.Index}, nil
}

// relay carries the frames that arrive on from over to to, each lossPercent
// in a hundred times not at all, and the others delay later.
func (im *Impairment) relay(from, to end, delay time.Duration, lossPercent int) {
	defer im.wg.Done()
	buf := make([]byte, 65536)
	for {
		select {
		case <-im.stop:
			return
		default:
		}
		n, sa, err := syscall.Recvfrom(from.fd, buf, 0)
		if err != nil {
			continue // the read timeout, or a frame too large: keep going
		}
		// The socket also sees the frames the relay itself sends out of
		// this interface.
		if ll, ok := sa.(*syscall.SockaddrLinklayer); !ok || ll.Pkttype == syscall.PACKET_OUTGOING {
			continue
		}
		if rand.IntN(100) < lossPercent {
			continue
		}
		frame := slices.Clone(buf[:n])
		time.AfterFunc(delay, func() {
			im.mu.RLock()
			defer im.mu.RUnlock()
			if !im.closed {
				// An address of its own: Sendto writes into it.
				_ = syscall.Sendto(to.fd, frame, 0, &syscall.SockaddrLinklayer{Ifindex: to.ifindex})
			}
		})
	}
}

// noOffloads makes dev (in network namespace netns, "" for this one) hand
// out whole frames of at most the MTU with their checksums computed, as a
// relay of raw frames needs.
func noOffloads(netns, dev string) error {
	args := []string{"ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off"}
	if netns != "" {
		args = append([]string{"ip", "netns", "exec", netns}, args...)
	}
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s (apt-get install ethtool; scripts/setup.sh test): %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
