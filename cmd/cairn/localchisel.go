package main

import (
	"fmt"
	"os"
	"strings"
)

// maxChiselSource is the largest local chisel the CLI sends: it travels in
// one request line of at most 4 MiB.
const maxChiselSource = 3 << 20

// withLocalChisel turns `chisel ./my.lua ARGS…` into a statement that
// carries the script's source (source=…), so a chisel on the client's disk
// runs in the daemon without being installed there. Other statements are
// returned unchanged.
func withLocalChisel(words []string) ([]string, error) {
	if len(words) < 2 || words[0] != "chisel" || !isLocalScript(words[1]) {
		return words, nil
	}
	src, err := os.ReadFile(words[1])
	if err != nil {
		return nil, fmt.Errorf("read chisel: %w", err)
	}
	if len(src) > maxChiselSource {
		return nil, fmt.Errorf("chisel %s is %d bytes; the most a client can send is %d", words[1], len(src), maxChiselSource)
	}
	out := append([]string{}, words[:2]...)
	out = append(out, "source="+string(src))
	return append(out, words[2:]...), nil
}

// isLocalScript says whether a chisel name is a path on the client's disk
// rather than the name of an installed chisel.
func isLocalScript(name string) bool {
	return strings.HasSuffix(name, ".lua") || strings.ContainsRune(name, '/')
}
