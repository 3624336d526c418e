//go:build !thin

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeDaemon answers a few statements over the wire protocol, so the CLI's
// flags, output and exit codes can be checked before the real daemon exists
// (the integration tests run the real one):
//
//	kv get a     one KV row
//	help         two verb rows
//	bad …        a parse error
//	missing      a not_found error
//	badcel       an invalid_argument error
//	tail         an event every 5ms until canceled
//
// It records every statement it receives.
type fakeDaemon struct {
	socket string
	ln     net.Listener
	wg     sync.WaitGroup

	mu    sync.Mutex
	stmts []string
}

func startFake(t *testing.T) *fakeDaemon {
	t.Helper()
	dir, err := os.MkdirTemp("", "cairn-cli-")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeDaemon{socket: filepath.Join(dir, "s.sock")}
	if f.ln, err = net.Listen("unix", f.socket); err != nil {
		t.Fatal(err)
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			conn, err := f.ln.Accept()
			if err != nil {
				return
			}
			f.wg.Add(1)
			go f.handle(conn)
		}
	}()
	t.Cleanup(func() {
		f.ln.Close()
		f.wg.Wait()
		os.RemoveAll(dir)
	})
	return f
}

func (f *fakeDaemon) received() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.stmts...)
}

func (f *fakeDaemon) handle(conn net.Conn) {
	defer f.wg.Done()
	defer conn.Close()
	var wmu sync.Mutex
	write := func(s string) {
		wmu.Lock()
		conn.Write([]byte(s + "\n"))
		wmu.Unlock()
	}
	var mu sync.Mutex
	cancels := map[int64]chan struct{}{}
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		var env struct {
			ID     int64  `json:"id"`
			DSL    string `json:"dsl"`
			Cancel bool   `json:"cancel"`
		}
		json.Unmarshal(sc.Bytes(), &env)
		id, _ := json.Marshal(env.ID)
		pre := `{"id":` + string(id) + `,`
		mu.Lock()
		if env.Cancel {
			if ch := cancels[env.ID]; ch != nil {
				close(ch)
				delete(cancels, env.ID)
			}
			mu.Unlock()
			continue
		}
		canceled := make(chan struct{})
		cancels[env.ID] = canceled
		mu.Unlock()
		f.mu.Lock()
		f.stmts = append(f.stmts, env.DSL)
		f.mu.Unlock()
		verb, _, _ := strings.Cut(env.DSL, " ")
		switch {
		case env.DSL == "kv get a":
			write(pre + `"row":{"key":"a","value":"1","create_rev":2,"mod_rev":2,"version":1,"lease":"0"}}`)
			write(pre + `"done":true}`)
		case env.DSL == "help":
			write(pre + `"row":{"verb":"kv get","usage":"kv get KEY","summary":"read"}}`)
			write(pre + `"row":{"verb":"status","usage":"status","summary":"health"}}`)
			write(pre + `"done":true}`)
		case env.DSL == "missing":
			write(pre + `"error":{"code":"not_found","message":"key \"a\" not found"}}`)
		case env.DSL == "badcel":
			write(pre + `"error":{"code":"invalid_argument","message":"1:15: undeclared reference to 'x'","pos":{"line":1,"col":15}}}`)
		case env.DSL == "tail":
			go func() {
				for seq := 1; ; seq++ {
					select {
					case <-canceled:
						write(pre + `"error":{"code":"canceled","message":"canceled"}}`)
						return
					case <-time.After(5 * time.Millisecond):
						write(pre + `"event":{"seq":` + strconv.Itoa(seq) + `,"time":"2026-11-25T10:00:00Z","kind":"test.tick","subject":"t"}}`)
					}
				}
			}()
		default:
			write(pre + `"error":{"code":"parse","message":"1:1: unknown verb \"` + verb + `\"","pos":{"line":1,"col":1}}}`)
		}
	}
	mu.Lock()
	for _, ch := range cancels {
		close(ch)
	}
	mu.Unlock()
}

// cli runs the CLI with args and stdin text, returning exit code and output.
func cli(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	in, err := os.CreateTemp(t.TempDir(), "stdin")
	if err != nil {
		t.Fatal(err)
	}
	in.WriteString(stdin)
	in.Seek(0, 0)
	defer in.Close()
	var out, errOut bytes.Buffer
	code = run(args, in, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCLI(t *testing.T) {
	f := startFake(t)
	sock := "--socket=" + f.socket
	for _, tc := range []struct {
		name     string
		stdin    string
		args     []string
		code     int
		stdout   string
		stderr   string // substring
		received []string
	}{
		{name: "table", args: []string{sock, "kv", "get", "a"}, code: 0,
			stdout: "KEY  VALUE  CREATE_REV  MOD_REV  VERSION  LEASE\na    1      2           2        1        0\n"},
		{name: "json", args: []string{"-socket", f.socket, "-o", "json", "kv", "get", "a"}, code: 0,
			stdout: `{"key":"a","value":"1","create_rev":2,"mod_rev":2,"version":1,"lease":"0"}` + "\n"},
		{name: "one word statement", args: []string{sock, "-o=json", "kv get a"}, code: 0, received: []string{"kv get a"}},
		{name: "flags after the verb belong to the statement", args: []string{sock, "kv", "put", "a", "-o", "x y"},
			code: 2, received: []string{`kv put a -o "x y"`}, stderr: `cairn: 1:1: unknown verb "kv"`},
		{name: "daemon error", args: []string{sock, "missing"}, code: 1, stderr: "cairn: key \"a\" not found (not_found)\n"},
		{name: "invalid argument", args: []string{sock, "badcel"}, code: 2, stderr: "1:15: undeclared reference"},
		{name: "unreachable", args: []string{"--socket", f.socket + ".nope", "status"}, code: 3,
			stderr: "cairn: cannot reach the daemon at " + f.socket + ".nope"},
		{name: "unreachable hint", args: []string{"--socket", f.socket + ".nope", "status"}, code: 3, stderr: "cairn daemon"},
		{name: "no statement", args: []string{sock}, code: 2, stderr: "usage:"},
		{name: "bad -o", args: []string{"-o", "yaml", "status"}, code: 2, stderr: "table or json"},
		{name: "bad flag", args: []string{"--nope", "status"}, code: 2},
		{name: "file stops at first error", stdin: "# comment\nkv get a\n\nbad one\nkv get a\n",
			args: []string{sock, "-f", "-"}, code: 2, stderr: "cairn: stdin:4: 1:1: unknown verb",
			stdout:   "KEY  VALUE  CREATE_REV  MOD_REV  VERSION  LEASE\na    1      2           2        1        0\n",
			received: []string{"kv get a", "bad one"}},
		{name: "file with statement words", args: []string{sock, "-f", "-", "status"}, code: 2},
		{name: "shell without a terminal goes on after errors", stdin: "missing\nkv get a\nexit\nkv get a\n",
			args: []string{sock, "-o", "json", "shell"}, code: 1, stderr: "stdin:1: key",
			stdout: `{"key":"a","value":"1","create_rev":2,"mod_rev":2,"version":1,"lease":"0"}` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.received())
			code, stdout, stderr := cli(t, tc.stdin, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tc.code, stderr)
			}
			if tc.stdout != "" && stdout != tc.stdout {
				t.Errorf("stdout\n%s\nwant\n%s", stdout, tc.stdout)
			}
			if !strings.Contains(stderr, tc.stderr) {
				t.Errorf("stderr %q, want it to contain %q", stderr, tc.stderr)
			}
			if tc.received != nil {
				got := f.received()[before:]
				if strings.Join(got, "\n") != strings.Join(tc.received, "\n") {
					t.Errorf("daemon received %q, want %q", got, tc.received)
				}
			}
		})
	}
}

// TestInterruptCancelsStream checks that ^C during a tail cancels it and
// exits 0 once the daemon confirms.
func TestInterruptCancelsStream(t *testing.T) {
	f := startFake(t)
	go func() {
		time.Sleep(100 * time.Millisecond)
		syscall.Kill(os.Getpid(), syscall.SIGINT)
	}()
	code, stdout, stderr := cli(t, "", "--socket", f.socket, "tail")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) < 3 || !strings.HasSuffix(lines[0], "2026-11-25T10:00:00.000Z  test.tick  t") {
		t.Fatalf("stdout %q", stdout)
	}
}
