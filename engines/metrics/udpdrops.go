package metrics

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// The kernel drops the datagrams a full socket buffer cannot take before
// the daemon ever sees them; /proc/net/udp counts them per socket (its
// last column). cairn_statsd_kernel_drops_total reads that count for the
// DogStatsD socket, so a flood's losses are counted, not only the ones
// the daemon decides.

// udpDrops returns the drops column of the socket bound to local in a
// /proc/net/udp or /proc/net/udp6 table.
func udpDrops(table []byte, local *net.UDPAddr) (uint64, bool) {
	port := fmt.Sprintf(":%04X", local.Port)
	for i, line := range bytes.Split(table, []byte("\n")) {
		f := strings.Fields(string(line))
		if i == 0 || len(f) < 13 || !strings.HasSuffix(f[1], port) {
			continue
		}
		n, err := strconv.ParseUint(f[len(f)-1], 10, 64)
		return n, err == nil
	}
	return 0, false
}

// kernelDrops reads the drops of the DogStatsD socket.
func kernelDrops(conn net.PacketConn) float64 {
	la, ok := conn.LocalAddr().(*net.UDPAddr)
	if !ok {
		return 0
	}
	for _, p := range []string{"/proc/self/net/udp", "/proc/self/net/udp6"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if n, ok := udpDrops(b, la); ok {
			return float64(n)
		}
	}
	return 0
}
