package randomprovider

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

// stringResource is random_string, or random_password (its result
// sensitive, derived again on each read, never journaled).
type stringResource struct {
	stateOnly
	password bool
}

var (
	_ provider.Resource    = stringResource{}
	_ provider.StateBacked = stringResource{}
)

var stringArgs = []string{"length", "special", "upper", "lower", "numeric", "number", "min_upper", "min_lower", "min_numeric", "min_special", "override_special"}

func (r stringResource) Schema() *provider.Schema {
	b := func(d string) *provider.Attribute {
		return &provider.Attribute{Type: provider.Bool, Optional: true, ForceNew: true, Default: true, Description: d}
	}
	n := func(d string) *provider.Attribute {
		return &provider.Attribute{Type: provider.Number, Optional: true, ForceNew: true, Default: int64(0), Description: d}
	}
	desc := "A random string of printable characters (hashicorp/random's random_string)."
	if r.password {
		desc = "A random password (hashicorp/random's random_password): its result is sensitive, never journaled, and derived again from a nonce (its id) and the daemon's host key."
	}
	return &provider.Schema{
		Description: desc,
		Attributes: map[string]*provider.Attribute{
			"length":           {Type: provider.Number, Required: true, ForceNew: true, Description: "The length of the string desired. The minimum value for length is 1 and, length must also be >= (min_upper + min_lower + min_numeric + min_special)."},
			"special":          b("Include special characters in the result. These are !@#$%&*()-_=+[]{}<>:?. Default value is true."),
			"upper":            b("Include uppercase alphabet characters in the result. Default value is true."),
			"lower":            b("Include lowercase alphabet characters in the result. Default value is true."),
			"numeric":          b("Include numeric characters in the result. Default value is true."),
			"number":           {Type: provider.Bool, Optional: true, ForceNew: true, Description: "Include numeric characters in the result. Deprecated by the provider for numeric; when given, it decides."},
			"min_upper":        n("Minimum number of uppercase alphabet characters in the result. Default value is 0."),
			"min_lower":        n("Minimum number of lowercase alphabet characters in the result. Default value is 0."),
			"min_numeric":      n("Minimum number of numeric characters in the result. Default value is 0."),
			"min_special":      n("Minimum number of special characters in the result. Default value is 0."),
			"override_special": {Type: provider.String, Optional: true, ForceNew: true, Description: "Supply your own list of special characters to use for string generation."},
			"keepers":          keepers,
			"result":           {Type: provider.String, Computed: true, Sensitive: r.password, Description: "The generated random string."},
		},
	}
}

func (r stringResource) Validate(v provider.Values, known map[string]bool) error {
	l, ok := knownInt(v, known, "length")
	if !ok {
		return nil
	}
	if l < 1 {
		return fmt.Errorf("length must be at least 1, not %d", l)
	}
	if l > 1<<16 {
		return fmt.Errorf("length must be at most 65536, not %d", l)
	}
	if mins := v.Int("min_upper") + v.Int("min_lower") + v.Int("min_numeric") + v.Int("min_special"); mins > l {
		return fmt.Errorf("length (%d) must be >= (min_upper + min_lower + min_numeric + min_special) (%d)", l, mins)
	}
	if !v.Bool("upper") && !v.Bool("lower") && !numeric(v) && !v.Bool("special") && v.Has("special") {
		return errors.New("at least one of upper, lower, numeric and special must be true")
	}
	return nil
}

const (
	lowerChars   = "abcdefghijklmnopqrstuvwxyz"
	upperChars   = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	numericChars = "0123456789"
	specialChars = "!@#$%&*()-_=+[]{}<>:?"
)

// numeric is numeric, or the deprecated number when given.
func numeric(v provider.Values) bool {
	if v.Has("number") {
		return v.Bool("number")
	}
	return v.Bool("numeric")
}

// generate makes a string (of length characters, not bytes) as
// hashicorp/random does: the minimums first,
// the rest from every allowed set, then shuffled; r is the randomness.
func generate(r io.Reader, v provider.Values) (string, error) {
	special := specialChars
	if v.Has("override_special") {
		special = v.String("override_special")
	}
	var all []rune
	sets := []struct {
		on    bool
		chars []rune
		min   int64
	}{
		{v.Bool("upper"), []rune(upperChars), v.Int("min_upper")},
		{v.Bool("lower"), []rune(lowerChars), v.Int("min_lower")},
		{numeric(v), []rune(numericChars), v.Int("min_numeric")},
		{v.Bool("special"), []rune(special), v.Int("min_special")},
	}
	var out []rune
	for _, s := range sets {
		if s.on {
			all = append(all, s.chars...)
		}
		for range s.min {
			if len(s.chars) == 0 {
				break
			}
			i, err := intn(r, len(s.chars))
			if err != nil {
				return "", err
			}
			out = append(out, s.chars[i])
		}
	}
	if len(all) == 0 {
		return "", errors.New("no characters to choose from")
	}
	for int64(len(out)) < v.Int("length") {
		i, err := intn(r, len(all))
		if err != nil {
			return "", err
		}
		out = append(out, all[i])
	}
	for i := len(out) - 1; i > 0; i-- {
		j, err := intn(r, i+1)
		if err != nil {
			return "", err
		}
		out[i], out[j] = out[j], out[i]
	}
	return string(out), nil
}

func (r stringResource) Create(ctx context.Context, s provider.Session, planned provider.Values) (provider.Values, error) {
	out := planned.Clone()
	if r.password {
		id, err := nonce()
		if err != nil {
			return nil, err
		}
		key, err := keyOf(s)
		if err != nil {
			return nil, err
		}
		res, err := generate(newStream(key, "random_password", id, canonical(planned, stringArgs...)), planned)
		if err != nil {
			return nil, err
		}
		out["result"], out["id"] = res, id
		return out, nil
	}
	res, err := generate(rand.Reader, planned)
	if err != nil {
		return nil, err
	}
	out["result"], out["id"] = res, res
	return out, nil
}

// ReadState answers random_password's result derived again (state keeps
// a digest of it only), random_string's as state has it.
func (r stringResource) ReadState(ctx context.Context, s provider.Session, id string, prior provider.Values) (provider.Values, bool, error) {
	if !r.password {
		return prior, true, nil
	}
	key, err := keyOf(s)
	if err != nil {
		return nil, false, err
	}
	res, err := generate(newStream(key, "random_password", id, canonical(prior, stringArgs...)), prior)
	if err != nil {
		return nil, false, err
	}
	out := prior.Clone()
	out["result"] = res
	return out, true, nil
}
