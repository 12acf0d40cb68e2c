package harness

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"strings"
)

// Network is a test network on this machine: a Linux bridge in the host's
// network namespace holding Gateway, and Hosts network namespaces, each
// joined to the bridge by a veth pair and holding one address of the
// bridge's /24. A process started in a host's namespace (Host.Command)
// listens on an address that an EndpointSlice accepts (never loopback) and
// reaches Gateway, where the production-path cluster's apiserver listens.
// Every address is in 198.18.0.0/15 (RFC 2544, for benchmarks; never
// routed), on interfaces the test made: no traffic leaves the machine.
//
// It needs root and iproute2's ip(8) (Debian's iproute2). Close removes the
// namespaces and the bridge.
type Network struct {
	// Gateway is the bridge's address, in the host's namespace.
	Gateway netip.Addr
	// Hosts are the network namespaces, in order.
	Hosts  []*Host
	bridge string
}

// Host is one network namespace of a Network.
type Host struct {
	// Namespace is the name of the network namespace (ip netns).
	Namespace string
	// Addr is its address on the bridge.
	Addr netip.Addr
}

// ErrNoNetwork is returned by NewNetwork when this machine cannot make
// network namespaces (not root, or no ip(8)).
var ErrNoNetwork = errors.New("cannot make test network namespaces: needs root and ip(8) from iproute2")

// NewNetwork makes a bridge and n network namespaces on it, under names
// unique to this process, in a /24 of 198.18.0.0/15 drawn at random (so that
// two test processes on one machine do not collide). It returns
// ErrNoNetwork, wrapped, when the machine cannot, and otherwise an error
// naming the ip command that failed.
func NewNetwork(n int) (*Network, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w (running as uid %d)", ErrNoNetwork, os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoNetwork, err)
	}
	third := 1 + rand.IntN(254)
	tag := fmt.Sprintf("sg%d", os.Getpid()%100000) // interface names: at most 15 bytes
	nw := &Network{
		Gateway: netip.AddrFrom4([4]byte{198, 18, byte(third), 1}),
		bridge:  tag + "br",
	}
	steps := [][]string{
		{"link", "add", nw.bridge, "type", "bridge"},
		{"addr", "add", nw.Gateway.String() + "/24", "dev", nw.bridge},
		{"link", "set", nw.bridge, "up"},
	}
	if err := ipAll(steps); err != nil {
		return nil, errors.Join(err, nw.Close())
	}
	for i := range n {
		h := &Host{
			Namespace: fmt.Sprintf("stsguard-%s-%d", tag, i),
			Addr:      netip.AddrFrom4([4]byte{198, 18, byte(third), byte(10 + i)}),
		}
		nw.Hosts = append(nw.Hosts, h)
		veth := fmt.Sprintf("%sv%d", tag, i)
		if err := ipAll([][]string{
			{"netns", "add", h.Namespace},
			{"link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h.Namespace},
			{"link", "set", veth, "master", nw.bridge},
			{"link", "set", veth, "up"},
			{"-n", h.Namespace, "addr", "add", h.Addr.String() + "/24", "dev", "eth0"},
			{"-n", h.Namespace, "link", "set", "eth0", "up"},
			{"-n", h.Namespace, "link", "set", "lo", "up"},
		}); err != nil {
			return nil, errors.Join(err, nw.Close())
		}
	}
	return nw, nil
}

// Command returns cmd run inside h's network namespace (ip netns exec).
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.Namespace, name}, args...)...)
}

// Close removes the namespaces (and with them their veth pairs) and the
// bridge, and returns the errors of what it could not remove.
func (nw *Network) Close() error {
	var errs []error
	for _, h := range nw.Hosts {
		if err := ip("netns", "delete", h.Namespace); err != nil && !strings.Contains(err.Error(), "No such file") {
			errs = append(errs, err)
		}
	}
	if err := ip("link", "delete", nw.bridge); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func ipAll(steps [][]string) error {
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return err
		}
	}
	return nil
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
