package main

import "strings"

// The CLI is built twice from this package. bin/cairnd is the whole of it:
// the daemon, and the statements the CLI runs itself (capture run, read,
// journal export|import|repair, a local script or file sent along). bin/cairn
// is built with the tag thin: a client that links no engine, so it starts
// in a couple of milliseconds instead of the 15 that every engine's
// package initialisation costs, and hands everything else to cairnd by
// exec (thin.go). Which statements need cairnd is read from the verb table
// (localVerbs and fileVerbs; TestHandOffVerbs keeps them equal to it).

// localVerbs are the verbs the CLI runs itself: the table's verbs whose
// spec says Client, sorted.
var localVerbs = [][]string{
	{"capture", "run"},
	{"journal", "export"},
	{"journal", "import"},
	{"journal", "repair"},
	{"read"},
}

// fileVerbs are the verbs with an argument the CLI reads and sends when it
// names a local file (isLocalScript): the table's verbs whose spec has a
// ClientFile, sorted.
var fileVerbs = [][]string{
	{"alert", "rules", "load"},
	{"chisel"},
	{"cloud-config", "update"},
	{"deploy"},
}

// isLocalScript reports whether a chisel or file argument names a file on
// the client's disk rather than one the daemon knows by name.
func isLocalScript(name string) bool {
	return strings.HasSuffix(name, ".lua") || strings.ContainsRune(name, '/')
}

// needsWhole reports whether the command line args (flags and statement
// words, as given to cairn) must run in cairnd: `daemon`, `shell`, `-f`, a
// statement holding one of localVerbs' word sequences anywhere (a chisel
// follows a pipe), or one of fileVerbs' with a word that may name a local
// file. It errs towards yes: a word that only looks like one of them costs
// the hand-off, never a wrong answer.
func needsWhole(args []string) bool {
	var words []string
	for _, a := range args {
		if a == "-f" || a == "--f" || strings.HasPrefix(a, "-f=") || strings.HasPrefix(a, "--f=") {
			return true
		}
		words = append(words, strings.FieldsFunc(a, func(r rune) bool {
			return r == ' ' || r == '\t' || r == '\n' || r == '|' || r == ';'
		})...)
	}
	if len(words) > 0 && (words[0] == "daemon" || words[0] == "shell") {
		return true
	}
	localFile := false
	for _, w := range words {
		localFile = localFile || isLocalScript(w)
	}
	for i := range words {
		if words[i] == "daemon" || words[i] == "shell" {
			return true // after flags: cairn -o json shell
		}
		if hasVerbAt(words, i, localVerbs) || localFile && hasVerbAt(words, i, fileVerbs) {
			return true
		}
	}
	return false
}

// hasVerbAt reports whether one of verbs' word sequences starts at
// words[i].
func hasVerbAt(words []string, i int, verbs [][]string) bool {
	for _, v := range verbs {
		if i+len(v) <= len(words) && equalWords(words[i:i+len(v)], v) {
			return true
		}
	}
	return false
}

func equalWords(a, b []string) bool {
	for i := range b {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// hugePagesTunable asks glibc's malloc to back the memory it maps with
// transparent huge pages (madvise). pebble's memtables are calloc'd
// arenas of up to 64 MiB, written page by page as commits come; on a
// virtual machine each first touch of a 4 KiB page costs ≈ 11 µs, a
// tenth of a 64-client KV put's CPU (docs/benchmarks.md, "Session 13").
const hugePagesTunable = "glibc.malloc.hugetlb=1"

// handOffEnv is the environment cairnd gets for args: for `daemon`, env
// with hugePagesTunable added to GLIBC_TUNABLES, unless it already sets
// glibc.malloc.hugetlb (the caller's choice stands, =0 turns it off). A
// tunable is read when the process starts, so the thin client, which
// execs the daemon, is the place to set it.
func handOffEnv(env, args []string) []string {
	if !isDaemon(args) {
		return env
	}
	out := make([]string, 0, len(env)+1)
	set := false
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GLIBC_TUNABLES="); ok {
			set = true
			if !strings.Contains(v, "glibc.malloc.hugetlb=") {
				if v != "" {
					v += ":"
				}
				kv = "GLIBC_TUNABLES=" + v + hugePagesTunable
			}
		}
		out = append(out, kv)
	}
	if !set {
		out = append(out, "GLIBC_TUNABLES="+hugePagesTunable)
	}
	return out
}

// isDaemon reports whether args run the daemon: `cairn daemon [FLAGS…]`,
// daemon the first word (whole.go runs it only so).
func isDaemon(args []string) bool { return len(args) > 0 && args[0] == "daemon" }
