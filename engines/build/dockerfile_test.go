package build

import (
	"errors"
	"testing"
)

func TestParseDockerfileErrors(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want string
	}{
		{"FROM scratch\nFROMM busybox\n", "Dockerfile:2:1: unknown instruction: FROMM (did you mean FROM?) (in FROMM busybox)"},
		{"FROM scratch\nCOPY\n", "Dockerfile:2:1: COPY requires at least two arguments, but only one was provided. Destination could not be determined (in COPY)"},
		{"RUN true\n", "Dockerfile:1:1: no build stage in current context (in RUN true)"},
		{"# escape=x\nFROM scratch\n", "Dockerfile:1:1: invalid escape token 'x' does not match ` or \\ (in # escape=x)"},
	} {
		_, err := ParseDockerfile("Dockerfile", []byte(tc.src))
		var se *SyntaxError
		if !errors.As(err, &se) || err.Error() != tc.want {
			t.Errorf("%q: got %v, want %s", tc.src, err, tc.want)
		}
	}
}
