package randomprovider

import (
	"context"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/engines/infra/provider"
)

func args(length int64, extra provider.Values) provider.Values {
	v := provider.Values{"length": length, "special": true, "upper": true, "lower": true, "numeric": true,
		"min_upper": int64(0), "min_lower": int64(0), "min_numeric": int64(0), "min_special": int64(0)}
	for k, x := range extra {
		v[k] = x
	}
	return v
}

// random_password's result is derived again from its id, its arguments
// and the host key: the same for the same three, another for another key
// or nonce; it honours the minimums and the character sets.
func TestPasswordDerivedAgain(t *testing.T) {
	ctx := context.Background()
	r := stringResource{password: true}
	s := &session{key: []byte("0123456789abcdef0123456789abcdef")}
	planned := args(24, provider.Values{"min_numeric": int64(5), "min_special": int64(3), "override_special": "#!"})
	got, err := r.Create(ctx, s, planned)
	if err != nil {
		t.Fatal(err)
	}
	id, res := got.String("id"), got.String("result")
	if len([]rune(res)) != 24 || id == "" || id == res {
		t.Fatalf("id %q result %q", id, res)
	}
	digits, specials := 0, 0
	for _, c := range res {
		switch {
		case strings.ContainsRune(numericChars, c):
			digits++
		case c == '#' || c == '!':
			specials++
		case !strings.ContainsRune(upperChars+lowerChars, c):
			t.Fatalf("%q holds %q, outside the sets", res, c)
		}
	}
	if digits < 5 || specials < 3 {
		t.Fatalf("%q: %d digits, %d specials", res, digits, specials)
	}
	prior := planned.Clone() // what state keeps: no result
	again, found, err := r.ReadState(ctx, s, id, prior)
	if err != nil || !found || again.String("result") != res {
		t.Fatalf("read again: %q %v %v, want %q", again.String("result"), found, err, res)
	}
	other, _, _ := r.ReadState(ctx, &session{key: []byte("another key, another password!!!")}, id, prior)
	if other.String("result") == res {
		t.Fatal("another host key derived the same password")
	}
	next, _ := r.Create(ctx, s, planned)
	if next.String("result") == res {
		t.Fatal("two passwords are the same")
	}
}

func TestStringCountsCharactersNotBytes(t *testing.T) {
	got, err := stringResource{}.Create(context.Background(), &session{}, args(40, provider.Values{"override_special": "/@£$", "min_special": int64(10)}))
	if err != nil {
		t.Fatal(err)
	}
	if n := len([]rune(got.String("result"))); n != 40 || got.String("id") != got.String("result") {
		t.Fatalf("result %q: %d characters", got.String("result"), n)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		v    provider.Values
		want string
	}{
		{args(0, nil), "length must be at least 1"},
		{args(3, provider.Values{"min_upper": int64(2), "min_lower": int64(2)}), "length (3) must be >= (min_upper + min_lower + min_numeric + min_special) (4)"},
	} {
		err := stringResource{}.Validate(tc.v, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %s", tc.v, err, tc.want)
		}
	}
	if err := (integerResource{}).Validate(provider.Values{"min": int64(5), "max": int64(1)}, nil); err == nil {
		t.Error("min > max accepted")
	}
}

func TestShuffleAndInteger(t *testing.T) {
	ctx := context.Background()
	in := []string{"a", "b", "c", "d"}
	got, err := shuffleResource{}.Create(ctx, &session{}, provider.Values{"input": in, "result_count": int64(6), "seed": "x"})
	if err != nil {
		t.Fatal(err)
	}
	if l := got.List("result"); len(l) != 6 {
		t.Fatalf("result %v", l)
	}
	again, _ := shuffleResource{}.Create(ctx, &session{}, provider.Values{"input": in, "result_count": int64(6), "seed": "x"})
	if strings.Join(again.List("result"), ",") != strings.Join(got.List("result"), ",") {
		t.Fatal("the same seed shuffled differently")
	}
	n, err := integerResource{}.Create(ctx, &session{}, provider.Values{"min": int64(7), "max": int64(7)})
	if err != nil || n.Int("result") != 7 || n.String("id") != "7" {
		t.Fatalf("integer %v %v", n, err)
	}
}
