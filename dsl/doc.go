// Package dsl lexes and parses cairn's command language and holds the verb table.
//
// A statement is a verb of one to three words followed by words that bind to the
// verb's declared positionals, flag words, NAME=VALUE options, an optional
// key=value bag, `where 'CEL'`, `-- raw args…`, keyword sections (kv txn) and at
// most one `| chisel NAME ARGS…` stage. Statements are separated by newlines or
// `;`, and `#` starts a comment when it begins a word outside quotes.
//
// The table is data: the parser, `help`, usage lines, the CLI's completion and
// the daemon's routing all read the same Specs. Errors carry a 1-based line and
// column (in code points) and, where one is close, the nearest valid name.
package dsl
