package daemon

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestListenSocketMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "cairn.sock")
	l, err := listenSocket(path, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode = %v, want a socket with 0660", fi.Mode())
	}
}

func TestListenSocketRefusesLiveDaemon(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cairn.sock")
	l, err := listenSocket(path, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if _, err := listenSocket(path, -1); !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second listen: err = %v, want ErrAlreadyRunning", err)
	}
	// The first listener is untouched.
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("first daemon's socket is gone: %v", err)
	}
	c.Close()
}

func TestListenSocketRefusesNonSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cairn.sock")
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := listenSocket(path, -1); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("listen over a file: err = %v, want a refusal", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Fatal("the file was touched")
	}
}

func TestListenSocketReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cairn.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close() // leaves the socket file behind, as a killed daemon does
	l2, err := listenSocket(path, -1)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l2.Close()
}

func TestPeerCredentials(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cairn.sock")
	l, err := listenSocket(path, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan Peer, 1)
	go func() {
		c, err := l.AcceptUnix()
		if err != nil {
			return
		}
		defer c.Close()
		p, _ := peerOf(c)
		got <- p
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := <-got
	if p.UID != os.Getuid() || p.GID != os.Getgid() || p.PID != os.Getpid() {
		t.Errorf("peer = %+v, want uid %d gid %d pid %d", p, os.Getuid(), os.Getgid(), os.Getpid())
	}
	if a := p.Actor(); a.Via != "socket" || a.PID != os.Getpid() {
		t.Errorf("actor = %+v", a)
	}
	want, err := os.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	gotGroups := slices.Sorted(slices.Values(p.Groups))
	if p.Groups == nil || !slices.Equal(gotGroups, want) {
		t.Errorf("peer groups %v, want %v (SO_PEERGROUPS)", p.Groups, want)
	}
	if a := p.Actor(); !slices.Equal(a.Groups, p.Groups) {
		t.Errorf("actor groups %v, want the peer's %v", a.Groups, p.Groups)
	}
}
