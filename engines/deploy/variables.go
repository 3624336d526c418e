package deploy

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/ssh"
)

// VarDef is a manifest's variables entry.
type VarDef struct {
	Name    string         `yaml:"name"`
	Type    string         `yaml:"type"`
	Options map[string]any `yaml:"options"`
}

var varRE = regexp.MustCompile(`\(\(\s*([A-Za-z0-9_./-]+)\s*\)\)`)

// varValue finds name (a.b picks b of a's value) in vars.
func varValue(vars map[string]any, name string) (any, bool) {
	name = strings.TrimPrefix(name, "/")
	if v, ok := vars[name]; ok {
		return v, true
	}
	head, rest, ok := strings.Cut(name, ".")
	if !ok {
		return nil, false
	}
	v, ok := vars[head]
	if !ok {
		return nil, false
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	return lookupDotted(m, rest)
}

// interpolate replaces ((name)) in every scalar of a YAML document: a
// scalar that is only ((name)) takes the value itself (a map for a
// certificate), one that holds it among text takes its text. The names
// of what had no value are returned, sorted.
func interpolate(src []byte, vars map[string]any) ([]byte, []string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, nil, err
	}
	missing := map[string]bool{}
	var walk func(n *yaml.Node) error
	walk = func(n *yaml.Node) error {
		if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "((") {
			if m := varRE.FindStringSubmatch(n.Value); m != nil && m[0] == strings.TrimSpace(n.Value) {
				v, ok := varValue(vars, m[1])
				if !ok {
					missing[m[1]] = true
					return nil
				}
				var repl yaml.Node
				if err := repl.Encode(v); err != nil {
					return err
				}
				*n = repl
				return nil
			}
			n.Value = varRE.ReplaceAllStringFunc(n.Value, func(s string) string {
				name := varRE.FindStringSubmatch(s)[1]
				v, ok := varValue(vars, name)
				if !ok {
					missing[name] = true
					return s
				}
				return fmt.Sprint(v)
			})
			return nil
		}
		for _, c := range n.Content {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(&doc); err != nil {
		return nil, nil, err
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, nil, err
	}
	return out, names(missing), nil
}

// generate makes a variable's value: password, certificate (signed by
// options.ca, or self-signed with is_ca), rsa, ssh. generated are the
// values made so far (a certificate's CA among them).
func generate(def VarDef, generated map[string]any) (any, error) {
	switch def.Type {
	case "password":
		const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
		b := make([]byte, 20)
		for i := range b {
			n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
			if err != nil {
				return nil, err
			}
			b[i] = alphabet[n.Int64()]
		}
		return string(b), nil
	case "rsa", "ssh":
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		priv := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
		if def.Type == "rsa" {
			pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
			if err != nil {
				return nil, err
			}
			return map[string]any{"private_key": priv, "public_key": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))}, nil
		}
		pub, err := ssh.NewPublicKey(&key.PublicKey)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(pub.Marshal())
		return map[string]any{"private_key": priv, "public_key": strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))),
			"public_key_fingerprint": "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])}, nil
	case "certificate":
		return certificate(def, generated)
	}
	return nil, fmt.Errorf("variables: %s: type %q is not password, certificate, rsa or ssh", def.Name, def.Type)
}

func certificate(def VarDef, generated map[string]any) (any, error) {
	opt := func(k string) any { return def.Options[k] }
	isCA, _ := opt("is_ca").(bool)
	cn, _ := opt("common_name").(string)
	if cn == "" {
		cn = def.Name
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, BasicConstraintsValid: true}
	if alts, ok := opt("alternative_names").([]any); ok {
		for _, a := range alts {
			tmpl.DNSNames = append(tmpl.DNSNames, fmt.Sprint(a))
		}
	}
	var parent *x509.Certificate
	var signer *rsa.PrivateKey
	caPEM := ""
	if caName, _ := opt("ca").(string); caName != "" {
		ca, ok := generated[caName].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("variables: %s: its ca %s is not a certificate declared before it", def.Name, caName)
		}
		cb, _ := pem.Decode([]byte(fmt.Sprint(ca["certificate"])))
		kb, _ := pem.Decode([]byte(fmt.Sprint(ca["private_key"])))
		if cb == nil || kb == nil {
			return nil, fmt.Errorf("variables: %s: its ca %s has no certificate and key", def.Name, caName)
		}
		if parent, err = x509.ParseCertificate(cb.Bytes); err != nil {
			return nil, err
		}
		if signer, err = x509.ParsePKCS1PrivateKey(kb.Bytes); err != nil {
			return nil, err
		}
		caPEM = fmt.Sprint(ca["certificate"])
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	} else if isCA {
		parent, signer = tmpl, key
	} else {
		return nil, fmt.Errorf("variables: %s: a certificate needs options.ca, or options.is_ca: true", def.Name)
	}
	if isCA {
		tmpl.IsCA = true
		tmpl.KeyUsage |= x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return nil, err
	}
	cert := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	if caPEM == "" {
		caPEM = cert
	}
	return map[string]any{"ca": caPEM, "certificate": cert,
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))}, nil
}

// resolveVars interpolates a manifest: the caller's values (var.K=V,
// vars-file) first, then the deployment's variables, generated once and
// kept in stored. It answers the interpolated manifest and the names of
// the variables it generated now.
func resolveVars(file string, src []byte, given map[string]any, stored map[string]any) ([]byte, []string, error) {
	var head struct {
		Variables []VarDef `yaml:"variables"`
	}
	if err := yaml.Unmarshal(src, &head); err != nil {
		return nil, nil, yamlError(file, src, err)
	}
	vars := map[string]any{}
	for k, v := range stored {
		vars[k] = v
	}
	var made []string
	for _, def := range head.Variables {
		if def.Name == "" {
			return nil, nil, fmt.Errorf("%s: variables: an entry has no name", file)
		}
		if _, ok := given[def.Name]; ok {
			continue
		}
		if _, ok := stored[def.Name]; ok {
			continue
		}
		v, err := generate(def, vars)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", file, err)
		}
		vars[def.Name], stored[def.Name] = v, v
		made = append(made, def.Name)
	}
	for k, v := range given {
		vars[k] = v
	}
	out, missing, err := interpolate(src, vars)
	if err != nil {
		return nil, nil, yamlError(file, src, err)
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, nil, fmt.Errorf("%s: ((%s)) has no value: give var.%s=… or vars-file=, or declare it under variables", file, strings.Join(missing, ")), (("), missing[0])
	}
	return out, made, nil
}
