//go:build !thin

package main

import (
	"slices"
	"strings"
	"testing"
)

// TestHandOffVerbs: the thin client's lists of the verbs it hands to
// cairnd are the table's verbs marked Client and those with a ClientFile
// argument. A verb added to either without a line in handoff.go would
// reach the daemon from bin/cairn unread.
func TestHandOffVerbs(t *testing.T) {
	var local, file []string
	for _, sp := range verbTable().Specs() {
		if sp.Client {
			local = append(local, sp.Verb)
		}
		if sp.ClientFile != "" {
			file = append(file, sp.Verb)
		}
	}
	slices.Sort(local)
	slices.Sort(file)
	join := func(vs [][]string) []string {
		var out []string
		for _, v := range vs {
			out = append(out, strings.Join(v, " "))
		}
		return out
	}
	if got := join(localVerbs); !slices.Equal(got, local) {
		t.Errorf("localVerbs = %q, the table's Client verbs are %q (update cmd/cairn/handoff.go)", got, local)
	}
	if got := join(fileVerbs); !slices.Equal(got, file) {
		t.Errorf("fileVerbs = %q, the table's ClientFile verbs are %q (update cmd/cairn/handoff.go)", got, file)
	}
}

// TestNeedsWhole: which command lines the thin client hands to cairnd.
func TestNeedsWhole(t *testing.T) {
	for _, c := range []struct {
		args []string
		want bool
	}{
		{[]string{"daemon", "--data", "/x"}, true},
		{[]string{"shell"}, true},
		{[]string{"-o", "json", "shell"}, true},
		{[]string{"-f", "stmts.txt"}, true},
		{[]string{"--socket", "/s", "-f=-"}, true},
		{[]string{"read", "trace.scap"}, true},
		{[]string{"-o", "json", "capture", "run", "--", "true"}, true},
		{[]string{"journal", "export", "to=/tmp/x"}, true},
		{[]string{"events", "|", "chisel", "./mine.lua"}, true},
		{[]string{"events | chisel ./mine.lua"}, true},
		{[]string{"events|chisel", "top.lua"}, true},
		{[]string{"deploy", "manifests/web.yml"}, true},
		{[]string{"alert", "rules", "load", "rules.yml"}, false}, // a name the daemon knows, no path
		{[]string{"alert", "rules", "load", "./rules.yml"}, true},
		{[]string{"events", "|", "chisel", "topprocs"}, false},
		{[]string{"deploy", "delete", "web"}, false},
		{[]string{"run", "rm", "--", "true"}, false},
		{[]string{"kv", "put", "a", "b"}, false},
		{[]string{"journal", "verify"}, false},
		{[]string{"capture", "start"}, false},
		{[]string{"status"}, false},
	} {
		if got := needsWhole(c.args); got != c.want {
			t.Errorf("needsWhole(%q) = %v, want %v", c.args, got, c.want)
		}
	}
}

// TestHandOffEnv: the daemon gets glibc's huge-page tunable added, unless
// the caller set glibc.malloc.hugetlb; nothing else changes, and other
// statements get the environment as it was.
func TestHandOffEnv(t *testing.T) {
	for _, c := range []struct {
		env, args, want []string
	}{
		{[]string{"A=1"}, []string{"daemon", "--data", "/x"}, []string{"A=1", "GLIBC_TUNABLES=glibc.malloc.hugetlb=1"}},
		{[]string{"A=1"}, []string{"--socket", "/s", "daemon"}, []string{"A=1"}}, // a statement, not the daemon (whole.go)
		{[]string{"GLIBC_TUNABLES=glibc.malloc.arena_max=2", "B=2"}, []string{"daemon", "--etcd", "127.0.0.1:2379"},
			[]string{"GLIBC_TUNABLES=glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1", "B=2"}},
		{[]string{"GLIBC_TUNABLES="}, []string{"daemon"}, []string{"GLIBC_TUNABLES=glibc.malloc.hugetlb=1"}},
		{[]string{"GLIBC_TUNABLES=glibc.malloc.hugetlb=0"}, []string{"daemon"}, []string{"GLIBC_TUNABLES=glibc.malloc.hugetlb=0"}},
		{[]string{"A=1"}, []string{"shell"}, []string{"A=1"}},
		{[]string{"A=1"}, []string{"kv", "put", "daemon", "x"}, []string{"A=1"}},
		{[]string{"A=1"}, []string{"-f", "daemon"}, []string{"A=1"}}, // a file named daemon
	} {
		if got := handOffEnv(c.env, c.args); !slices.Equal(got, c.want) {
			t.Errorf("handOffEnv(%q, %q) = %q, want %q", c.env, c.args, got, c.want)
		}
	}
}
