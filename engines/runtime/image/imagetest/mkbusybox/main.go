// Command mkbusybox writes the test image of the runtime engine, FROM
// scratch with Debian's static busybox, as a docker-archive: the image
// `make busybox-image` gives a newcomer to import.
//
//	go run ./engines/runtime/image/imagetest/mkbusybox /tmp/busybox.tar
package main

import (
	"fmt"
	"os"

	"github.com/cairnhq/cairn/engines/runtime/image/imagetest"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mkbusybox FILE")
		os.Exit(2)
	}
	extra := map[string]string{"www/index.html": "hello from a cairn container\n"}
	if err := imagetest.WriteBusybox(os.Args[1], "busybox:latest", extra); err != nil {
		fmt.Fprintln(os.Stderr, "mkbusybox:", err)
		os.Exit(1)
	}
}
