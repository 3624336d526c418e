// Command cairnbench measures cairn against the performance targets of
// issue 2 and prints one table: the journal against raw pebble in the same
// process, 64 socket clients against the real daemon, commit → tail and
// commit → NATS latency under that load, a CEL filter scan over 1M events,
// start-up (also after SIGKILL) and idle RSS.
//
// The machine it runs on is shared and noisy, so every figure is the median
// of several rounds, and the journal is compared with pebble as a ratio
// measured in the same run, never as an absolute time.
//
//	go run ./cmd/cairnbench --bin bin/cairn [--quick] [--rounds N] [--only fsync,append,load,scan,startup,limits]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is what the flags ask for.
type config struct {
	bin    string
	quick  bool
	rounds int
	only   map[string]bool
	dir    string // where temporary data directories go
	keep   bool
	// logsForwardOnly: --only logs-forward runs the logs part's forward
	// rows alone (the tail and syslog rows take minutes).
	logsForwardOnly bool
}

// parts lists the benchmarks in the order they run; --only selects among them.
var parts = []struct {
	name string
	e2e  bool // needs --bin
	run  func(ctx context.Context, b *bench) error
}{
	{"fsync", false, runFsync},
	{"append", false, runAppend},
	{"load", true, runLoad},
	{"scan", true, runScanAndStartup}, // startup reuses the scan's data set
	{"infra", true, runInfra},
	{"storm", true, runStorm},
	{"ingest", true, runIngest},
	{"limits", true, runLimits},
	{"runtime", true, runRuntime},
	{"build", true, runBuild},
	{"discovery", true, runDiscovery},
	{"logs", true, runLogs},
	{"deploy", true, runDeploy},
	{"metrics", true, runMetrics},
	{"collectors", true, runCollectors},
}

// wants reports whether --only selects the named part (all without --only).
func (c *config) wants(name string) bool { return c.only == nil || c.only[name] }

func main() {
	if sock := os.Getenv(floodChildEnv); sock != "" {
		n, _ := strconv.Atoi(os.Getenv(floodChildNEnv))
		floodChild(sock, n)
		return
	}
	// The daemons it starts bind DogStatsD on a free port unless a part
	// says otherwise: the default, 127.0.0.1:8125, would make them refuse
	// to start beside another daemon (CAIRN_STATSD is --statsd's default).
	if os.Getenv("CAIRN_STATSD") == "" {
		os.Setenv("CAIRN_STATSD", "127.0.0.1:0")
	}
	var cfg config
	var only string
	flag.StringVar(&cfg.bin, "bin", "", "the cairn binary, for the end-to-end parts (load, scan, startup)")
	flag.BoolVar(&cfg.quick, "quick", false, "smaller sizes, for a smoke run")
	flag.IntVar(&cfg.rounds, "rounds", 5, "rounds per measurement; the table shows medians")
	flag.StringVar(&only, "only", "", "comma-separated parts to run: fsync, append, load, scan, startup, infra, storm, ingest, limits, runtime, build, discovery, logs (logs-forward: its forward rows alone), deploy, metrics (default all)")
	flag.StringVar(&cfg.dir, "dir", os.TempDir(), "directory for the temporary data directories (its filesystem is what is measured)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary directories")
	cpuprofile := flag.String("cpuprofile", "", "write the benchmark process's own CPU profile (clients included) to this file")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "cairnbench: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	if cfg.rounds < 1 {
		fmt.Fprintln(os.Stderr, "cairnbench: --rounds must be at least 1")
		os.Exit(2)
	}
	if only != "" {
		cfg.only = map[string]bool{}
		for _, n := range strings.Split(only, ",") {
			n = strings.TrimSpace(n)
			switch n {
			case "latency":
				n = "load"
			case "rss":
				n = "startup"
			case "logs-forward":
				n, cfg.logsForwardOnly = "logs", true
			case "fsync", "append", "load", "scan", "startup", "infra", "storm", "ingest", "limits", "runtime", "build", "discovery", "logs", "deploy", "metrics", "collectors":
			default:
				fmt.Fprintf(os.Stderr, "cairnbench: --only %q: want fsync, append, load (or latency), scan, startup (or rss), infra, storm, ingest, limits, runtime, build, discovery, logs, logs-forward, deploy, metrics or collectors\n", n)
				os.Exit(2)
			}
			cfg.only[n] = true
		}
	}
	if cfg.bin != "" {
		abs, err := filepath.Abs(cfg.bin)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "cairnbench: --bin %s: %v (build it with `make build`)\n", cfg.bin, err)
			os.Exit(2)
		}
		cfg.bin = abs
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "cairnbench: --cpuprofile: %v\n", err)
			os.Exit(2)
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	code := run(ctx, cfg)
	pprof.StopCPUProfile()
	os.Exit(code)
}

func run(ctx context.Context, cfg config) int {
	tmp, err := os.MkdirTemp(cfg.dir, "cairnbench-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "cairnbench: %v\n", err)
		return 1
	}
	if !cfg.keep {
		defer os.RemoveAll(tmp)
	}
	b := &bench{cfg: cfg, tmp: tmp, start: time.Now()}
	defer b.cleanup()
	b.printFacts()
	failed := false
	for _, p := range parts {
		if !cfg.wants(p.name) && !(p.name == "scan" && cfg.wants("startup")) {
			continue
		}
		if p.e2e && cfg.bin == "" {
			b.skip(p.name, "needs --bin (the cairn binary)")
			continue
		}
		if ctx.Err() != nil {
			break
		}
		b.logf("== %s", p.name)
		if err := p.run(ctx, b); err != nil {
			fmt.Fprintf(os.Stderr, "cairnbench: %s: %v\n", p.name, err)
			b.skip(p.name, "error: "+err.Error())
			failed = true
		}
		b.cleanup()
	}
	b.printTable()
	if failed || ctx.Err() != nil {
		return 1
	}
	return 0
}
