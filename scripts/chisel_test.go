package scripts

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/cairnhq/cairn/journal"
)

// TestDataDriven runs the chisels of testdata/run/*: fixture events, then
// built-in chisels and inline scripts over them, with their output.
//
//	events              one event per line, as -o json prints it (seq, prev, hash optional)
//	run NAME [stream=S] runs a chisel of the library over the events (of stream S); the input holds its args, one a line
//	lua [args=(A,B)]    runs the input as a chisel sent by a client (./test.lua)
//
// Either prints the chisel's output, then "error: …" if the run failed.
// The library searches testdata/chisels after the built-ins.
func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata/run", func(t *testing.T, path string) {
		lib := NewLibrary(Options{Paths: []string{"testdata/chisels"}, CallbackCPU: 2 * time.Second, MemoryLimit: 64 << 20})
		var raws []*journal.Raw
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			switch td.Cmd {
			case "events":
				evs, err := parseEvents(td.Input)
				if err != nil {
					t.Fatalf("%s: %v", td.Pos, err)
				}
				raws = chain(t, evs)
				return ""
			case "run", "lua":
				var (
					c    *Chisel
					err  error
					args []string
				)
				if td.Cmd == "run" {
					if td.Input != "" {
						args = strings.Split(td.Input, "\n")
					}
					c, err = lib.Load(td.CmdArgs[0].Key)
				} else {
					if td.HasArg("args") {
						for _, a := range td.CmdArgs {
							if a.Key == "args" {
								args = a.Vals
							}
						}
					}
					c, err = lib.LoadSource("./test.lua", td.Input)
				}
				if err != nil {
					return "error: " + err.Error() + "\n"
				}
				feed := &sliceFeed{raws: raws}
				if td.HasArg("stream") {
					var stream string
					td.ScanArgs(t, "stream", &stream)
					feed = &sliceFeed{}
					for _, r := range raws {
						if r.Stream == stream {
							feed.raws = append(feed.raws, r)
						}
					}
				}
				var lines []string
				err = c.Run(context.Background(), feed, RunOptions{Args: args, Output: collect(&lines)})
				out := strings.Join(lines, "\n")
				if len(lines) > 0 {
					out += "\n"
				}
				if err != nil {
					out += "error: " + err.Error() + "\n"
				}
				return out
			}
			t.Fatalf("%s: unknown command %q", td.Pos, td.Cmd)
			return ""
		})
	})
}
