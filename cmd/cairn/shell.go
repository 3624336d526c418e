package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"golang.org/x/term"
)

const shellPrompt = "cairn> "

// runShell runs `cairn shell`: an interactive prompt with history and verb
// completion on a terminal, or, when stdin is not one, the statements of
// stdin line by line without a prompt. Errors are printed and the shell goes
// on; exit, quit and end of input leave it.
func (s *session) runShell(stdin *os.File) int {
	fd := int(stdin.Fd())
	if !term.IsTerminal(fd) {
		return s.runLines("stdin", stdin, false)
	}

	verbs := s.verbs()
	cooked, err := term.MakeRaw(fd)
	if err != nil {
		fmt.Fprintf(s.stderr, "cairn: shell: %v\n", err)
		return exitDaemonError
	}
	defer term.Restore(fd, cooked)

	t := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{stdin, os.Stdout}, shellPrompt)
	t.AutoCompleteCallback = func(line string, pos int, key rune) (string, int, bool) {
		if key != '\t' {
			return "", 0, false
		}
		newLine, newPos, choices := complete(verbs, line, pos)
		if len(choices) > 0 {
			fmt.Fprintln(t, strings.Join(choices, "  "))
		}
		return newLine, newPos, newLine != line
	}

	for {
		if w, h, err := term.GetSize(fd); err == nil && w > 0 {
			t.SetSize(w, h)
		}
		line, err := t.ReadLine()
		if errors.Is(err, io.EOF) {
			return exitOK
		}
		if err != nil && !errors.Is(err, term.ErrPasteIndicator) {
			fmt.Fprintf(s.stderr, "cairn: shell: %v\r\n", err)
			return exitDaemonError
		}
		line = strings.TrimSpace(line)
		switch line {
		case "":
			continue
		case "exit", "quit":
			return exitOK
		}
		// Run the statement in cooked mode, so output needs no \r and ^C
		// arrives as an interrupt that cancels it rather than as a key.
		term.Restore(fd, cooked)
		_, err = s.exec(line)
		s.report(err)
		if _, err := term.MakeRaw(fd); err != nil {
			fmt.Fprintf(s.stderr, "cairn: shell: %v\n", err)
			return exitDaemonError
		}
	}
}

// verbs fetches the daemon's verb table for completion, each verb split into
// its words. Completion is a convenience: without a daemon there is none.
func (s *session) verbs() [][]string {
	c, err := s.client()
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := c.Do(ctx, "help")
	if err != nil {
		s.forgetIfLost(err)
		return nil
	}
	return parseVerbs(res.Rows)
}

// parseVerbs reads the verb words out of `help` rows
// ({"verb":"kv put","usage":…,"summary":…}).
func parseVerbs(rows []json.RawMessage) [][]string {
	var verbs [][]string
	for _, raw := range rows {
		var row struct {
			Verb string `json:"verb"`
		}
		if json.Unmarshal(raw, &row) == nil && row.Verb != "" {
			verbs = append(verbs, strings.Fields(row.Verb))
		}
	}
	return verbs
}

// complete completes the word before pos against the verb table: the first
// word against verbs' first words, the next against the following words of
// the multi-word verbs that match so far. A unique match is completed with a
// trailing space; several are completed to their common prefix, and when
// that adds nothing they are returned as choices to show.
func complete(verbs [][]string, line string, pos int) (newLine string, newPos int, choices []string) {
	before, after := line[:pos], line[pos:]
	words := strings.Fields(before)
	partial := ""
	if len(words) > 0 && !strings.HasSuffix(before, " ") {
		partial = words[len(words)-1]
		words = words[:len(words)-1]
	}

	seen := map[string]bool{}
	var matches []string
	for _, v := range verbs {
		if len(v) <= len(words) || !hasWords(v, words) {
			continue
		}
		next := v[len(words)]
		if strings.HasPrefix(next, partial) && !seen[next] {
			seen[next] = true
			matches = append(matches, next)
		}
	}
	sort.Strings(matches)

	switch len(matches) {
	case 0:
		return line, pos, nil
	case 1:
		insert := matches[0][len(partial):]
		if !strings.HasPrefix(after, " ") {
			insert += " "
		}
		return before + insert + after, pos + len(insert), nil
	}
	prefix := commonPrefix(matches)
	if len(prefix) > len(partial) {
		insert := prefix[len(partial):]
		return before + insert + after, pos + len(insert), nil
	}
	return line, pos, matches
}

// hasWords reports whether verb starts with words.
func hasWords(verb, words []string) bool {
	for i, w := range words {
		if verb[i] != w {
			return false
		}
	}
	return true
}

func commonPrefix(ss []string) string {
	p := ss[0]
	for _, s := range ss[1:] {
		for !strings.HasPrefix(s, p) {
			p = p[:len(p)-1]
		}
	}
	return p
}
