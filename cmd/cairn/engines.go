//go:build !thin

package main

// The engines linked into cairn: engines/all imports each, and each
// registers itself (its module, verbs and journal engines) from init. A
// new engine is one line there.
import _ "github.com/cairnhq/cairn/engines/all"
