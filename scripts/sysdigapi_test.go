package scripts

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// progressFeed is a sliceFeed that tells how far it has read.
type progressFeed struct{ sliceFeed }

func (f *progressFeed) Progress() float64 { return 100 * float64(f.i) / float64(len(f.raws)) }

// TestSysdigAPIRest: the first and last event times, the read progress,
// the terminal (none), the thread table without descriptors, and UDP to
// a statsd on loopback — received here — while a sandboxed chisel may not
// send elsewhere.
func TestSysdigAPIRest(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	port := pc.LocalAddr().(*net.UDPAddr).Port
	lib := NewLibrary(Options{})
	var lines []string
	c := loadSource(t, lib, fmt.Sprintf(`description = "x"
local n = 0
function on_init()
	sysdig.udp_setpeername("127.0.0.1", "%d")
	return true
end
function on_event()
	n = n + 1
	if n == 2 then print("progress", sysdig.get_read_progress()) end
end
function on_capture_end()
	print(sysdig.get_firstevent_ts() > 0, sysdig.get_lastevent_ts() >= sysdig.get_firstevent_ts(), sysdig.get_terminal_info())
	local tt = sysdig.get_thread_table_nofds()
	print(type(tt), next(tt) == nil)
	sysdig.udp_send("cairn.events:" .. n .. "|c")
	print(pcall(sysdig.udp_setpeername, "192.0.2.1", 8125))
end`, port))
	raws := kvEvents(t, 4)
	if err := c.Run(context.Background(), &progressFeed{sliceFeed{raws: raws}}, RunOptions{Output: func(l string) error { lines = append(lines, l); return nil }}); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(lines, "\n")
	want := "progress\t50\ntrue\ttrue\tnil\ntable\ttrue\nfalse\t"
	if !strings.HasPrefix(got, want) || !strings.Contains(got, "loopback only") {
		t.Fatalf("got\n%s\nwant it to start with\n%s", got, want)
	}
	buf := make([]byte, 100)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "cairn.events:4|c" {
		t.Fatalf("statsd got %q, %v", buf[:n], err)
	}
}
