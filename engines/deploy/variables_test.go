package deploy

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

const varsManifest = `name: ((deployment_name))
variables:
- {name: admin_password, type: password}
- {name: default_ca, type: certificate, options: {is_ca: true, common_name: ca}}
- {name: web_tls, type: certificate, options: {ca: default_ca, common_name: web.example, alternative_names: [web.example]}}
- {name: deploy_key, type: ssh}
- {name: jwt, type: rsa}
instance_groups:
- name: web
  instances: ((count))
  jobs:
  - name: httpd
    release: web
    properties:
      password: ((admin_password))
      url: "https://admin:((admin_password))@web:((port))"
      tls: ((web_tls))
      ca: ((web_tls.ca))
      key: ((deploy_key.public_key))
      jwt: ((jwt.private_key))
`

func TestVariables(t *testing.T) {
	given := map[string]any{"deployment_name": "demo", "count": 2, "port": "8443"}
	if name, err := manifestName("m.yml", []byte(varsManifest), given); err != nil || name != "demo" {
		t.Fatalf("manifestName = %q, %v", name, err)
	}
	stored := map[string]any{}
	out, made, err := resolveVars("m.yml", []byte(varsManifest), given, stored)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(made, ",") != "admin_password,default_ca,web_tls,deploy_key,jwt" {
		t.Errorf("generated %v", made)
	}
	m, err := parseManifest("m.yml", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if m.Name != "demo" || m.InstanceGroups[0].Instances != 2 {
		t.Errorf("name %q instances %d", m.Name, m.InstanceGroups[0].Instances)
	}
	props := m.InstanceGroups[0].Jobs[0].Properties
	pw, _ := props["password"].(string)
	if !regexp.MustCompile(`^[A-Za-z0-9]{20}$`).MatchString(pw) {
		t.Errorf("password %q", pw)
	}
	if props["url"] != fmt.Sprintf("https://admin:%s@web:8443", pw) {
		t.Errorf("url %q", props["url"])
	}
	tls, _ := props["tls"].(map[string]any)
	ca := x509.NewCertPool()
	if !ca.AppendCertsFromPEM([]byte(fmt.Sprint(props["ca"]))) {
		t.Fatalf("ca is not a PEM certificate: %v", props["ca"])
	}
	block, _ := pem.Decode([]byte(fmt.Sprint(tls["certificate"])))
	if block == nil {
		t.Fatalf("tls.certificate: %v", tls)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca, DNSName: "web.example"}); err != nil {
		t.Errorf("the certificate does not verify against its CA: %v", err)
	}
	if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(fmt.Sprint(props["key"]))); err != nil {
		t.Errorf("ssh public key: %v", err)
	}
	if !strings.HasPrefix(fmt.Sprint(props["jwt"]), "-----BEGIN RSA PRIVATE KEY-----") {
		t.Errorf("rsa private key: %v", props["jwt"])
	}
	// Generated once: the second resolve uses what was stored.
	out2, made2, err := resolveVars("m.yml", []byte(varsManifest), given, stored)
	if err != nil || len(made2) != 0 || string(out2) != string(out) {
		t.Errorf("second resolve: made %v, same %t, %v", made2, string(out2) == string(out), err)
	}
	// A value nobody gives.
	delete(given, "port")
	if _, _, err := resolveVars("m.yml", []byte(varsManifest), given, stored); err == nil || err.Error() != "m.yml: ((port)) has no value: give var.port=… or vars-file=, or declare it under variables" {
		t.Errorf("missing port: %v", err)
	}
}
