package authz

import (
	"strings"
	"testing"
)

func TestDefaultPolicy(t *testing.T) {
	var p *Policy
	alice := Caller{UID: 1000, GID: 1000, User: "alice", Via: "socket"}
	for _, c := range []struct {
		caller Caller
		access Access
		allow  bool
	}{
		{Caller{UID: 0}, Host, true},
		{alice, Read, true},
		{alice, Write, true},
		{alice, Host, false},
	} {
		d := p.Decide(Request{Caller: c.caller, Verb: "infra apply", Access: c.access})
		if d.Allow != c.allow || d.Reason == "" {
			t.Errorf("uid %d %s: %+v, want allow=%v with a reason", c.caller.UID, c.access, d, c.allow)
		}
	}
	d := p.Decide(Request{Caller: alice, Verb: "infra apply", Access: Host})
	if !strings.Contains(d.Reason, "infra apply acts on the host") || !strings.Contains(d.Reason, "--policy") {
		t.Errorf("denial reason %q does not say what to do", d.Reason)
	}
}

func TestPolicyRules(t *testing.T) {
	src := `# deploy may apply infrastructure
allow actor.user == "deploy" && verb.startsWith("infra ")
deny  'verb == "emit" && args["KIND"].startsWith("audit.")'
allow 4242 in actor.groups && access == "host" && verb == "journal import"
`
	p, err := Parse("policy.cel", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	deploy := Caller{UID: 1001, User: "deploy"}
	alice := Caller{UID: 1000, User: "alice", Groups: []int{4242}}
	for _, c := range []struct {
		req   Request
		allow bool
		rule  string
	}{
		{Request{Caller: deploy, Verb: "infra apply", Access: Host}, true, "policy.cel:2"},
		{Request{Caller: alice, Verb: "infra apply", Access: Host}, false, ""},
		{Request{Caller: alice, Verb: "emit", Args: map[string]string{"KIND": "audit.fake"}, Access: Write}, false, "policy.cel:3"},
		{Request{Caller: alice, Verb: "emit", Args: map[string]string{"KIND": "app.note"}, Access: Write}, true, ""},
		{Request{Caller: alice, Verb: "journal import", Access: Host}, true, "policy.cel:4"},
		{Request{Caller: Caller{UID: 0}, Verb: "emit", Args: map[string]string{"KIND": "audit.x"}, Access: Write}, true, ""},
	} {
		d := p.Decide(c.req)
		if d.Allow != c.allow || d.Rule != c.rule {
			t.Errorf("%s by %s: %+v, want allow=%v rule %q", c.req.Verb, c.req.Caller.User, d, c.allow, c.rule)
		}
	}
}

func TestPolicyErrors(t *testing.T) {
	for src, want := range map[string]string{
		"grant verb == \"x\"\n":           "p:1: a rule starts with allow or deny",
		"\n\nallow\n":                     "p:3: allow needs a CEL expression",
		"allow verb == 1\n":               "p:1:",
		"allow verb\n":                    "p:1: the rule must be boolean",
		"allow actor.uid == 1 &&\n":       "p:1:",
		"deny verb.startsWith(\"kv \")\n": "",
	} {
		_, err := Parse("p", []byte(src))
		if want == "" {
			if err != nil {
				t.Errorf("%q: %v", src, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", src, err, want)
		}
	}
}

// A rule that fails at run time (a missing map key) denies.
func TestRuleErrorDenies(t *testing.T) {
	p, err := Parse("p", []byte(`allow args["MISSING"] == "x"`))
	if err != nil {
		t.Fatal(err)
	}
	d := p.Decide(Request{Caller: Caller{UID: 5}, Verb: "kv get", Access: Read})
	if d.Allow || !strings.Contains(d.Reason, "could not be evaluated") {
		t.Fatalf("%+v, want a denial naming the rule", d)
	}
}

// FuzzParse: any policy text either parses or fails with an error naming
// the file, and a parsed policy decides without panicking.
func FuzzParse(f *testing.F) {
	f.Add("allow actor.user == \"deploy\" && verb.startsWith(\"infra \")\n")
	f.Add("# c\ndeny 'access == \"host\"'\n")
	f.Add("allow\n")
	f.Fuzz(func(t *testing.T, src string) {
		p, err := Parse("p", []byte(src))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "p") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		p.Decide(Request{Caller: Caller{UID: 7, Groups: []int{1}}, Verb: "kv put", Args: map[string]string{"KEY": "k"}, Access: Write})
	})
}
