// Package integration holds cairn's end-to-end tests: they build the real
// `cairn` binary (or use $CAIRN_BIN), run `cairn daemon` with a temporary
// socket and data directory, drive it through the Go client, the CLI and raw
// socket connections, SIGKILL and restart it, and require a clean exit on
// SIGTERM.
//
//	go test -count=1 ./integration/
//	CAIRN_BIN=/path/to/cairn go test -count=1 ./integration/
package integration
