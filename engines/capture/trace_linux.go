//go:build linux && amd64

package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairnhq/cairn/journal"
)

// Trace runs a command under ptrace, following its children as strace -f
// does, hands the decoded syscalls to o.Emit and returns the command's exit
// code once it and every traced descendant have ended. The tracing
// goroutine is locked to its OS thread (ptrace requests must come from the
// thread that attached), and PTRACE_O_EXITKILL kills the tree if the
// tracer dies.
func Trace(o TraceOptions) (int, error) {
	if len(o.Args) == 0 {
		return 0, errors.New("no command to trace")
	}
	path, err := exec.LookPath(o.Args[0])
	if err != nil {
		return 0, err
	}
	d := o.Decoder
	if d == nil {
		d = NewDecoder(nil)
	}
	if d.t == nil {
		d.t = procTracee{}
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	cmd := exec.Command(path, o.Args[1:]...)
	cmd.Args[0] = o.Args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = o.Stdin, o.Stdout, o.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Ptrace: true}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, syscall.EPERM) {
			return 0, fmt.Errorf("%w: %v", ErrTraceDenied, err)
		}
		return 0, fmt.Errorf("start %s: %w", o.Args[0], err)
	}
	root := cmd.Process.Pid
	var ws unix.WaitStatus
	if _, err := wait4(root, &ws); err != nil {
		return 0, fmt.Errorf("wait for %s: %w", o.Args[0], err)
	}
	if !ws.Stopped() {
		return ws.ExitStatus(), nil
	}
	opts := unix.PTRACE_O_EXITKILL | unix.PTRACE_O_TRACESYSGOOD | unix.PTRACE_O_TRACECLONE |
		unix.PTRACE_O_TRACEFORK | unix.PTRACE_O_TRACEVFORK | unix.PTRACE_O_TRACEEXEC
	if err := unix.PtraceSetOptions(root, opts); err != nil {
		_ = cmd.Process.Kill()
		if errors.Is(err, syscall.EPERM) {
			return 0, fmt.Errorf("%w: %v", ErrTraceDenied, err)
		}
		return 0, fmt.Errorf("ptrace options: %w", err)
	}
	emit := o.Emit
	if emit == nil {
		emit = func(*journal.Body) {}
	}
	// The exec that started the command happened before the options: it
	// is reported here as the command's first event.
	now := time.Now().UnixNano()
	if b := d.Decode(Syscall{PID: root, Nr: 59, Entry: now, Exit: now}); len(b) > 0 {
		emit(b[0])
	}

	type thread struct {
		inSyscall bool
		entry     Syscall
	}
	threads := map[int]*thread{root: {}}
	exitCode := 0
	resume := func(pid, sig int) { _ = unix.PtraceSyscall(pid, sig) }
	resume(root, 0)
	for len(threads) > 0 {
		pid, err := wait4(-1, &ws)
		if err != nil {
			if errors.Is(err, unix.ECHILD) {
				break
			}
			return exitCode, fmt.Errorf("wait: %w", err)
		}
		now := time.Now().UnixNano()
		th := threads[pid]
		switch {
		case ws.Exited() || ws.Signaled():
			code := ws.ExitStatus()
			if ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
			if pid == root {
				exitCode = code
			}
			if th != nil {
				if b := d.ProcExit(pid, code, now); b != nil {
					emit(b)
				}
				delete(threads, pid)
			}
			continue
		case !ws.Stopped():
			continue
		}
		if th == nil {
			// A new child may stop before its parent's clone event.
			th = &thread{}
			threads[pid] = th
		}
		sig := ws.StopSignal()
		switch {
		case sig == syscall.SIGTRAP|0x80:
			var regs unix.PtraceRegs
			if err := unix.PtraceGetRegs(pid, &regs); err != nil {
				resume(pid, 0)
				continue
			}
			if !th.inSyscall {
				th.inSyscall = true
				th.entry = Syscall{PID: pid, Nr: regs.Orig_rax,
					Args:  [6]uint64{regs.Rdi, regs.Rsi, regs.Rdx, regs.R10, regs.R8, regs.R9},
					Entry: now}
			} else {
				th.inSyscall = false
				s := th.entry
				s.Ret, s.Exit = int64(regs.Rax), now
				for _, b := range d.Decode(s) {
					emit(b)
				}
			}
			resume(pid, 0)
		case sig == syscall.SIGTRAP && ws.TrapCause() > 0:
			switch ws.TrapCause() {
			case unix.PTRACE_EVENT_CLONE, unix.PTRACE_EVENT_FORK, unix.PTRACE_EVENT_VFORK:
				msg, err := unix.PtraceGetEventMsg(pid)
				if err == nil {
					child := int(msg)
					var flags uint64
					if ws.TrapCause() == unix.PTRACE_EVENT_CLONE {
						flags = cloneFlags(d.t, th.entry)
					}
					if b := d.Fork(pid, child, flags, now); b != nil {
						emit(b)
					}
					if threads[child] == nil {
						threads[child] = &thread{}
					}
				}
			case unix.PTRACE_EVENT_EXEC:
				// A multithreaded exec takes over the leader's pid; the
				// syscall-exit stop of execve follows.
				if msg, err := unix.PtraceGetEventMsg(pid); err == nil && int(msg) != pid {
					if old := threads[int(msg)]; old != nil {
						delete(threads, int(msg))
						th.inSyscall = old.inSyscall
						th.entry = old.entry
						th.entry.PID = pid
					}
				}
			}
			resume(pid, 0)
		case sig == syscall.SIGSTOP && !th.inSyscall && th.entry.Entry == 0:
			// The first stop of a new child: not a signal to deliver.
			th.entry.Entry = now
			resume(pid, 0)
		default:
			resume(pid, int(sig))
		}
	}
	return exitCode, nil
}

// cloneFlags reads the flags of a clone or clone3 call.
func cloneFlags(t Tracee, s Syscall) uint64 {
	if s.Nr != 435 {
		return s.Args[0]
	}
	// clone3: the flags are the first field of struct clone_args.
	b, err := t.ReadMem(s.PID, s.Args[0], 8)
	if err != nil || len(b) < 8 {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

func wait4(pid int, ws *unix.WaitStatus) (int, error) {
	for {
		wpid, err := unix.Wait4(pid, ws, unix.WALL, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return wpid, err
	}
}

// procTracee answers a Decoder's questions from /proc and ptrace.
type procTracee struct{}

func (procTracee) FDName(pid, fd int) string {
	if fd < 0 {
		return ""
	}
	n, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + strconv.Itoa(fd))
	if err != nil {
		return ""
	}
	return n
}

func (procTracee) Socket(inode uint64) (diagSock, bool) { return socketByInode(inode) }

func (procTracee) ReadMem(pid int, addr uint64, n int) ([]byte, error) {
	b := make([]byte, n)
	got, err := unix.PtracePeekData(pid, uintptr(addr), b)
	return b[:got], err
}

func (procTracee) Proc(pid int) journal.Proc {
	dir := "/proc/" + strconv.Itoa(pid)
	p := journal.Proc{PID: int64(pid)}
	if exe, err := os.Readlink(dir + "/exe"); err == nil {
		p.Exe = exe
		p.Name = filepath.Base(exe)
	}
	if b, err := os.ReadFile(dir + "/cmdline"); err == nil {
		p.Cmdline = strings.TrimSpace(strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " "))
	}
	if cwd, err := os.Readlink(dir + "/cwd"); err == nil {
		p.Cwd = cwd
	}
	if b, err := os.ReadFile(dir + "/stat"); err == nil {
		if i := strings.LastIndexByte(string(b), ')'); i > 0 {
			if f := strings.Fields(string(b[i+1:])); len(f) > 1 {
				p.PPID, _ = strconv.ParseInt(f[1], 10, 64)
			}
			if j := strings.IndexByte(string(b), '('); j >= 0 && j < i {
				p.Comm = string(b[j+1 : i])
			}
			if p.Name == "" {
				p.Name = p.Comm
			}
		}
	}
	return p
}
