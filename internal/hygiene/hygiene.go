// Package hygiene holds the tree-wide checks `make vet` runs as tests: the
// import grouping goimports does not enforce, and that docs/events.md lists
// every event kind the code emits.
package hygiene
