//go:build linux

package capture

import (
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/journal"
)

// TestConnSourceShortConnection is the source's own acceptance: with a poll
// interval far longer than the connection lives, its close still comes,
// from the destroy notification, with the bytes it carried.
func TestConnSourceShortConnection(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the conn source needs root (sock_diag destroy notifications need CAP_NET_ADMIN)")
	}
	var mu sync.Mutex
	var got []*journal.Body
	s := newConnSource("/proc")
	if err := s.Start(t.Context(), SourceConfig{Interval: time.Hour}, func(b *journal.Body) bool {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, b)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const size = 1 << 20
	done := make(chan int64)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- -1
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		done <- n
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if n := <-done; n != size {
		t.Fatalf("server read %d bytes", n)
	}
	client := c.LocalAddr().String() + "->" + ln.Addr().String()

	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		var closes, connects []*journal.Body
		for _, b := range got {
			if b.FD == nil || b.FD.Name != client {
				continue
			}
			if b.Kind == ConnCloseKind {
				closes = append(closes, b)
			} else {
				connects = append(connects, b)
			}
		}
		mu.Unlock()
		if len(closes) == 2 {
			var types []string
			for _, b := range connects {
				types = append(types, b.Evt.Type)
			}
			if len(connects) != 2 || !(types[0] == "connect" && types[1] == "accept" || types[0] == "accept" && types[1] == "connect") {
				t.Errorf("connects %v, want one connect and one accept", types)
			}
			for _, b := range closes {
				total := b.Data["bytes_sent"].(int64) + b.Data["bytes_received"].(int64)
				if total < size || total > size+4 {
					t.Errorf("close %s: %v, want %d bytes (+ SYN/FIN)", b.Evt.Type, b.Data, size)
				}
				if b.Data["seen_at_close"] != true {
					t.Errorf("close without seen_at_close: %v", b.Data)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("closes of %s: %d after 5s", client, len(closes))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
