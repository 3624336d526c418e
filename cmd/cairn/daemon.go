//go:build !thin

package main

import (
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/daemon"
	"github.com/cairnhq/cairn/daemon/authz"
	"github.com/cairnhq/cairn/engines"
	"github.com/cairnhq/cairn/journal"
)

// runDaemon runs `cairn daemon ARGS…` and returns the process exit code.
func runDaemon(args []string) int {
	fs := flag.NewFlagSet("cairn daemon", flag.ContinueOnError)
	dataDir := fs.String("data", defaultDataDir(), "data directory (env CAIRN_DATA)")
	socket := fs.String("socket", client.DefaultSocket(), "unix socket path (env CAIRN_SOCKET)")
	natsAddr := fs.String("nats", "127.0.0.1:4222", "embedded NATS listen address, or off")
	httpAddr := fs.String("http", defaultHTTP(), "HTTP listen address (env CAIRN_HTTP; Consul-style API, engines' routes), or off")
	natsAuth := fs.String("nats-auth", "token", "NATS auth: token (from <data>/nats.token) or none")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	reserve := fs.Uint64("reserve-mb", 256, "free disk space (MiB) below which appends fail")
	keepAge := fs.Duration("capture-max-age", 7*24*time.Hour, "drop capture events older than this (0: keep)")
	keepMB := fs.Int64("capture-max-mb", 4096, "drop the oldest capture events beyond this many MiB on disk (0: no limit)")
	chiselPath := fs.String("chisel-path", "", "directories searched for chisels after the built-ins and /etc/cairn/chisels (DIR[:DIR…])")
	unsafeScripts := fs.Bool("allow-unsafe-scripts", false, "give chisels the full os and io libraries (never os.exit)")
	chiselCPU := fs.Duration("chisel-callback-time", 5*time.Second, "how long one chisel callback may run before it is stopped")
	chiselMem := fs.Int64("chisel-memory-mb", 256, "Lua memory one chisel run may hold (MiB)")
	restore := fs.String("restore", "", "before starting, import the capture `files` (FILE[,FILE…], a backup made with journal export) into an empty data directory")
	drain := fs.Duration("drain-timeout", 10*time.Second, "on SIGTERM, how long in-flight requests may run before their connections are closed")
	policyFile := fs.String("policy", "", "authorization policy `file`: allow/deny CEL rules for non-root callers (docs/security.md)")
	socketGroup := fs.String("socket-group", "", "`group` (name or gid) that owns the socket, so its members may connect (default: the daemon's)")
	maxConns := fs.Int("max-conns", daemon.DefaultMaxConns, "most client connections in all (also bounded by RLIMIT_NOFILE)")
	maxConnsPerUID := fs.Int("max-conns-per-uid", daemon.DefaultMaxConnsPerUID, "most client connections one non-root uid may hold")
	var trustKeys trustKeyFlag
	fs.Var(&trustKeys, "trust-key", "trust capture files signed by the public key in `FILE` (another node's <data>/node.pub, PEM); repeatable, or FILE,FILE")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the daemon to `FILE` until it stops (performance work)")
	modules := engines.New()
	for _, m := range modules {
		m.Flags(fs)
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "cairn daemon: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "cairn daemon: --log-level %q: want debug, info, warn or error\n", *logLevel)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "cairn daemon: --cpuprofile: %v\n", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	// The daemon's garbage is short-lived request and event buffers over a
	// small live heap (about 30 MiB): collecting at 3x the live heap
	// rather than Go's 2x costs tens of MiB and saves a tenth of its CPU
	// under load (docs/benchmarks.md, "Emit load"). GOGC still rules
	// when set.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(daemonGCPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var policy *authz.Policy
	if *policyFile != "" {
		p, err := authz.Load(*policyFile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "cairn daemon: --policy: %v\n", err)
			return 2
		}
		policy = p
	}
	cfg := daemon.Config{
		Policy:             policy,
		DataDir:            *dataDir,
		Socket:             *socket,
		NATS:               *natsAddr,
		NATSAuth:           *natsAuth,
		HTTP:               *httpAddr,
		Logger:             logger,
		Reserve:            *reserve << 20,
		Modules:            modules,
		DrainTimeout:       *drain,
		ChiselPaths:        append([]string{"/etc/cairn/chisels"}, filepath.SplitList(*chiselPath)...),
		AllowUnsafeScripts: *unsafeScripts,
		ChiselCallbackTime: *chiselCPU,
		ChiselMemory:       *chiselMem << 20,
		CaptureRetention:   journal.Retention{MaxAge: *keepAge, MaxBytes: *keepMB << 20},
		SocketGroup:        *socketGroup,
		MaxConns:           *maxConns,
		MaxConnsPerUID:     *maxConnsPerUID,
		TrustKeys:          trustKeys.keys,
	}
	if *restore != "" {
		if err := restoreBackup(ctx, cfg, *restore); err != nil {
			logger.Error("cairn daemon: restore failed", "err", err)
			return 1
		}
	}
	err := daemon.Run(ctx, cfg, nil)
	if err != nil {
		logger.Error("cairn daemon failed", "err", err)
		return 1
	}
	return 0
}

// defaultHTTP is $CAIRN_HTTP, else 127.0.0.1:8500 (Consul's HTTP port).
func defaultHTTP() string {
	if a := os.Getenv("CAIRN_HTTP"); a != "" {
		return a
	}
	return "127.0.0.1:8500"
}

// daemonGCPercent is the daemon's GOGC unless the environment sets one.
const daemonGCPercent = 200

// defaultDataDir is $CAIRN_DATA, else /var/lib/cairn as root, else
// $XDG_DATA_HOME/cairn.
func defaultDataDir() string {
	if d := os.Getenv("CAIRN_DATA"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/lib/cairn"
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "cairn")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "share", "cairn")
}

// trustKeyFlag gathers the public keys of --trust-key FILE[,FILE…], read
// as the flags are parsed so that a bad file stops the daemon at once.
type trustKeyFlag struct {
	files []string
	keys  []ed25519.PublicKey
}

func (f *trustKeyFlag) String() string { return strings.Join(f.files, ",") }

func (f *trustKeyFlag) Set(v string) error {
	for _, file := range strings.Split(v, ",") {
		if file = strings.TrimSpace(file); file == "" {
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		keys, err := journal.ParsePublicKeys(b)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		f.files = append(f.files, file)
		f.keys = append(f.keys, keys...)
	}
	return nil
}
