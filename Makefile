# cairn — build, run, test, bench.
GO      ?= go
BIN     := bin/cairn
WHOLE   := bin/cairnd
PKGS    := ./...
FUZZTIME ?= 10s
MODULE  := github.com/cairnhq/cairn
GOFILES  = $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')

.PHONY: all build run test unit integration fuzz fuzz-long bench busybox-image lint vet clean

all: build

# build writes the two binaries of cmd/cairn: bin/cairnd with every engine
# (the daemon, and the statements the CLI runs itself) and bin/cairn, the
# thin client (built with the tag thin: no engine linked, a start of a few
# ms), which execs bin/cairnd beside it for `daemon` and what it cannot do.
build:
	$(GO) build -o $(WHOLE) ./cmd/cairn
	$(GO) build -tags thin -o $(BIN) ./cmd/cairn

# run starts the daemon with embedded defaults: data in /var/lib/cairn and
# the socket at /run/cairn/cairn.sock as root (CAIRN_DATA / CAIRN_SOCKET or
# the XDG directories otherwise).
run: build
	./$(BIN) daemon

test: vet unit integration fuzz

# vet is the hygiene gate: go vet, gofmt, a tidy go.mod, goimports order
# (with cairn's packages in their own group, checked by internal/hygiene),
# staticcheck, and the tree-wide tests of internal/hygiene (import groups,
# every event kind documented in docs/events.md).
vet:
	$(GO) vet $(PKGS)
	$(GO) vet -tags thin ./cmd/cairn
	@out=$$(gofmt -l $(GOFILES)); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@$(GO) mod tidy -diff || { echo "go.mod is not tidy: run go mod tidy"; exit 1; }
	@out=$$($(GO) tool goimports -local $(MODULE) -l $(GOFILES)); \
	if [ -n "$$out" ]; then echo "goimports -local $(MODULE) needed:"; echo "$$out"; exit 1; fi
	$(GO) tool staticcheck $(PKGS)
	$(GO) tool staticcheck -tags thin ./cmd/cairn
	$(GO) test -count=1 ./internal/hygiene/

# unit runs every package's tests under the race detector, then without
# it the tests that measure Go's heap (under it pebble allocates some of
# its memory there, and they skip).
unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /integration)
	$(GO) test -count=1 -tags thin ./cmd/cairn
	$(GO) test -count=1 -run 'TestForwardIdleConnectionsHoldNoBuffers' ./engines/logs/
	$(GO) test -count=1 -run 'TestIdleWatchesKeepSmallStacks' ./engines/kv/

integration: build
	CAIRN_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 20m ./integration/...

# fuzz runs every fuzz target briefly (the corpus lives in testdata/fuzz).
fuzz:
	FUZZTIME=$(FUZZTIME) ./.ci/fuzz

fuzz-long:
	$(MAKE) fuzz FUZZTIME=5m

# busybox-image writes the runtime engine's test image (FROM scratch with
# Debian's busybox-static) to /tmp/busybox.tar, for `cairn image import`.
busybox-image:
	$(GO) run ./engines/runtime/image/imagetest/mkbusybox /tmp/busybox.tar

# bench measures the issue targets in one run on this machine and prints
# the ratios (journal vs raw pebble, socket load, latency, scan, start-up),
# then cairn's etcd API against the real etcd with the same client, then the
# dashboard's timeline over a million events and its page at 1,000 live
# events a second (headless Chromium).
bench: build
	$(GO) run ./cmd/cairnbench --bin $(BIN)
	CAIRN_BIN=$(CURDIR)/$(BIN) CAIRN_BENCH=1 $(GO) test -count=1 -run '^TestEtcdBench$$' -v ./integration/ | grep -v '^=== RUN'
	$(GO) test -run XXX -bench BenchmarkTimeline -benchtime 10x ./daemon/ui/
	CAIRN_BIN=$(CURDIR)/$(BIN) CAIRN_BENCH=1 $(GO) test -count=1 -run '^TestUI(LiveBench|FirstPaintBench)$$' -v ./integration/ | grep -v '^=== RUN'

lint: vet

clean:
	rm -rf bin
