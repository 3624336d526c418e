package etcdapi

import "testing"

// TestPermissionRanges: a request's range must lie inside the union of the
// user's permissions of its type, with etcd's range conventions (no end:
// one key; "\x00": every key from the start on; else [key, end)).
func TestPermissionRanges(t *testing.T) {
	st := newAuthState()
	st.Roles["r"] = &authRole{Perms: []authPerm{
		{Type: permRead, Key: []byte("a/"), End: []byte("a0")}, // prefix a/
		{Type: permRead, Key: []byte("a0"), End: []byte("b")},  // joins it: [a/, b)
		{Type: permWrite, Key: []byte("k")},                    // the key k alone
		{Type: 2, Key: []byte("z"), End: []byte{0}},            // READWRITE from z on
	}}
	st.Users["u"] = &authUser{Roles: []string{"r"}}
	st.Users["boss"] = &authUser{Roles: []string{rootName}}
	for _, tc := range []struct {
		typ      int32
		key, end string
		want     bool
	}{
		{permRead, "a/x", "", true},
		{permRead, "a/", "a0", true},
		{permRead, "a/", "b", true}, // across the two adjacent permissions
		{permRead, "a/", "c", false},
		{permRead, "a", "", false},
		{permWrite, "a/x", "", false},
		{permWrite, "k", "", true},
		{permWrite, "k", "l", false}, // a range beyond the one key
		{permWrite, "k0", "", false},
		{permWrite, "zz", "", true},
		{permRead, "z", "\x00", true},
		{permRead, "y", "\x00", false},
	} {
		if got := st.allowed("u", tc.typ, []byte(tc.key), []byte(tc.end)); got != tc.want {
			t.Errorf("allowed(%d, %q, %q) = %v, want %v", tc.typ, tc.key, tc.end, got, tc.want)
		}
	}
	if !st.allowed("boss", permWrite, []byte("anything"), []byte{0}) || st.allowed("nobody", permRead, []byte("a/x"), nil) {
		t.Error("root may do anything, an unknown user nothing")
	}
}

func TestAuthChecks(t *testing.T) {
	st := newAuthState()
	if err := st.check(authOp{Kind: KindAuthEnable}); err == nil {
		t.Error("auth enabled without a root user")
	}
	st.Users[rootName] = &authUser{}
	if err := st.check(authOp{Kind: KindAuthEnable}); err == nil {
		t.Error("auth enabled with a root user lacking the root role")
	}
	st.Users[rootName].Roles = []string{rootName}
	if err := st.check(authOp{Kind: KindAuthEnable}); err != nil {
		t.Error(err)
	}
	if err := st.check(authOp{Kind: KindAuthUserAdd, Name: rootName}); err == nil {
		t.Error("a user added twice")
	}
	if err := st.check(authOp{Kind: KindAuthUserGrant, Name: rootName, Role: "nope"}); err == nil {
		t.Error("a missing role granted")
	}
}
