package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cairnhq/cairn/engines/runtime/oci"
)

// runner runs RUN steps as runc containers, in the foreground: runc run
// waits for the step's process and answers its exit status.
type runner struct {
	bin  string // runc, "" when it is not installed
	root string // runc --root, the build engine's own
}

var errNoRunc = errors.New("RUN needs runc: install Debian's runc package (apt-get install runc), or give the daemon --runc PATH")

// stepSpec is what a RUN step's container needs.
type stepSpec struct {
	args    []string
	env     []string
	cwd     string
	user    string
	network string // none or host
	mounts  []specs.Mount
}

// bundle writes the OCI runtime config of a step whose rootfs is mounted
// at dir/rootfs, with Docker's defaults (engines/runtime/oci).
func bundle(dir, id string, st stepSpec) error {
	uid, gid, groups, err := oci.ResolveUser(filepath.Join(dir, "rootfs"), st.user)
	if err != nil {
		return err
	}
	caps := append([]string(nil), oci.DockerCaps...)
	cwd := st.cwd
	if cwd == "" {
		cwd = "/"
	}
	s := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{
			Args: st.args, Env: st.env, Cwd: cwd,
			User:            specs.User{UID: uid, GID: gid, AdditionalGids: groups},
			Capabilities:    &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
			NoNewPrivileges: true,
		},
		Hostname: "cairn-build",
		Mounts:   append(oci.DefaultMounts(), st.mounts...),
		Linux: &specs.Linux{
			CgroupsPath: "/cairn-build/" + id,
			Resources:   &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
			MaskedPaths:   oci.MaskedPaths(),
			ReadonlyPaths: oci.ReadonlyPaths(),
		},
	}
	if st.network != "host" {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600)
}

// run runs the bundle in dir as container id with its output to out,
// and answers its exit status. When ctx ends the container is killed
// (runc kill), waited for and deleted.
func (r runner) run(ctx context.Context, dir, id string, out io.Writer) (int, error) {
	if r.bin == "" {
		return 0, errNoRunc
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	cmd := exec.Command(r.bin, "--root", r.root, "--log", filepath.Join(dir, "runc.log"), "--log-format", "json",
		"run", "--bundle", dir, id)
	cmd.Dir = dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start runc: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-done:
	case <-ctx.Done():
		// runc run forwards signals to the container's process; kill the
		// whole container through runc, then wait for runc to report.
		r.kill(id)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		r.remove(id)
		return -1, ctx.Err()
	}
	r.remove(id)
	if werr == nil {
		return 0, nil
	}
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		if msg := runcError(dir); msg != "" {
			return ee.ExitCode(), fmt.Errorf("the step did not start: %s", msg)
		}
		return ee.ExitCode(), nil
	}
	return 0, fmt.Errorf("runc run: %w", werr)
}

func (r runner) kill(id string) {
	_ = exec.Command(r.bin, "--root", r.root, "kill", "--all", id, "KILL").Run()
}

// remove deletes runc's state of a step container, if it has any.
func (r runner) remove(id string) {
	if _, err := os.Stat(filepath.Join(r.root, id)); err != nil {
		return
	}
	_ = exec.Command(r.bin, "--root", r.root, "delete", "--force", id).Run()
}

// runcError reads runc's log for why a process did not start.
func runcError(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "runc.log"))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		var l struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Level == "error" {
			return l.Msg
		}
	}
	return ""
}

// mountOverlay mounts lower (topmost first) at target, writable through
// upper and work when upper is given, read-only otherwise.
func mountOverlay(target string, lower []string, upper, work string) error {
	opts := "lowerdir=" + strings.Join(lower, ":")
	flags := uintptr(0)
	if upper != "" {
		opts += ",upperdir=" + upper + ",workdir=" + work
	} else {
		flags = unix.MS_RDONLY
	}
	if err := unix.Mount("overlay", target, "overlay", flags, opts); err != nil {
		return fmt.Errorf("mount the step's rootfs (overlayfs): %w", err)
	}
	return nil
}

// unmount unmounts target, lazily if it is busy.
func unmount(target string) error {
	err := unix.Unmount(target, 0)
	if err != nil && !errors.Is(err, unix.EINVAL) {
		err = unix.Unmount(target, unix.MNT_DETACH)
	}
	if errors.Is(err, unix.EINVAL) {
		return nil // not mounted
	}
	return err
}
