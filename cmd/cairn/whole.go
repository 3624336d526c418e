//go:build !thin

package main

// handOff runs `cairn daemon`; the thin client's (thin.go) hands more to
// cairnd, and this binary is cairnd: it runs everything else itself.
func handOff(args []string) (code int, handed bool) {
	if isDaemon(args) {
		return runDaemon(args[1:]), true
	}
	return 0, false
}
