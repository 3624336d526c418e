package netcfg

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// DefaultHostIP is the address a published port listens on when the spec
// names none: cairn's listeners bind to loopback unless told otherwise, so
// a container is not reachable from the network by accident.
var DefaultHostIP = netip.MustParseAddr("127.0.0.1")

// PublishSpec is one parsed -p: where the host listens, and the container
// port it forwards to.
type PublishSpec struct {
	Host          netip.AddrPort // DefaultHostIP when the spec names no address
	ContainerPort uint16
	Proto         string // "tcp" or "udp"
}

// String spells the spec back in the long form ParsePublish reads.
func (s PublishSpec) String() string {
	return fmt.Sprintf("%s:%d/%s", s.Host, s.ContainerPort, s.Proto)
}

// ParsePublish parses the forms of docker run -p that name both ports:
// "8080:80", "127.0.0.1:8080:80", "[::1]:8080:80", each with an optional
// "/tcp" or "/udp". Docker's "80" and "127.0.0.1::80" (a host port picked
// at random) and port ranges are refused: the host port of a container
// should be known before it starts.
func ParsePublish(s string) (PublishSpec, error) {
	spec := PublishSpec{Proto: "tcp"}
	rest := s
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		spec.Proto = rest[i+1:]
		rest = rest[:i]
		if spec.Proto != "tcp" && spec.Proto != "udp" {
			return PublishSpec{}, fmt.Errorf("publish %q: protocol %q: want tcp or udp", s, spec.Proto)
		}
	}
	// The container port is after the last colon, the host port before it,
	// and the host address (which may hold colons in brackets) before that.
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return PublishSpec{}, fmt.Errorf("publish %q: no host port: write HOST:CONTAINER (such as 8080:%s); cairn does not pick a random host port", s, rest)
	}
	ctrPort, err := parsePort(rest[i+1:])
	if err != nil {
		return PublishSpec{}, fmt.Errorf("publish %q: container port: %w", s, err)
	}
	spec.ContainerPort = ctrPort
	rest = rest[:i]
	hostIP, hostPortText := DefaultHostIP, rest
	if j := strings.LastIndexByte(rest, ':'); j >= 0 {
		ipText := rest[:j]
		hostPortText = rest[j+1:]
		if ipText != "" {
			ipText = strings.TrimSuffix(strings.TrimPrefix(ipText, "["), "]")
			hostIP, err = netip.ParseAddr(ipText)
			if err != nil || hostIP.Zone() != "" {
				return PublishSpec{}, fmt.Errorf("publish %q: host address %q: not an IP address", s, rest[:j])
			}
		}
	}
	if hostPortText == "" {
		return PublishSpec{}, fmt.Errorf("publish %q: empty host port: cairn does not pick a random host port, name one", s)
	}
	hostPort, err := parsePort(hostPortText)
	if err != nil {
		return PublishSpec{}, fmt.Errorf("publish %q: host port: %w", s, err)
	}
	spec.Host = netip.AddrPortFrom(hostIP, hostPort)
	return spec, nil
}

// parsePort reads a port number, 1 to 65535.
func parsePort(s string) (uint16, error) {
	if strings.Contains(s, "-") {
		return 0, fmt.Errorf("%q: port ranges are not supported, publish each port", s)
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q: want a number from 1 to 65535", s)
	}
	return uint16(n), nil
}
