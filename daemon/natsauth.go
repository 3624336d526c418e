package daemon

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"

	"github.com/nats-io/nats-server/v2/server"
)

// publisherUser is the user name of the daemon's own in-process NATS
// connection, the only one allowed to publish on cairn.>.
const publisherUser = "cairn-publisher"

// natsAuth decides who may connect to the embedded NATS server and what
// each may do. The daemon's publisher proves itself with a password made at
// start and never written anywhere; every other client (with the token, or
// anyone under --nats-auth none) may subscribe but never publish, so no
// subscriber can be handed a forged event on cairn.<stream>.<kind>.
type natsAuth struct {
	token         string // "" under --nats-auth none
	publisherPass string
}

func newNATSAuth(token string) *natsAuth {
	raw := make([]byte, 24)
	rand.Read(raw)
	return &natsAuth{token: token, publisherPass: hex.EncodeToString(raw)}
}

// subscriberPermissions let a client subscribe to anything and publish
// nothing.
var subscriberPermissions = &server.Permissions{
	Publish: &server.SubjectPermission{Deny: []string{">"}},
}

// publisherPermissions let the daemon's publisher put events on cairn.>.
var publisherPermissions = &server.Permissions{
	Publish: &server.SubjectPermission{Allow: []string{"cairn.>"}},
}

// Check implements server.Authentication.
func (a *natsAuth) Check(c server.ClientAuthentication) bool {
	if c.Kind() != server.CLIENT {
		return false // no routes, gateways or leaf nodes are configured
	}
	o := c.GetOpts()
	if o.Username == publisherUser {
		if !equalSecret(o.Password, a.publisherPass) {
			return false
		}
		c.RegisterUser(&server.User{Username: publisherUser, Permissions: publisherPermissions})
		return true
	}
	if a.token != "" {
		// nats.go sends a token as auth_token; a URL's user part without a
		// password (nats://TOKEN@host) arrives the same way.
		if !equalSecret(o.Token, a.token) {
			return false
		}
	}
	c.RegisterUser(&server.User{Username: "subscriber", Permissions: subscriberPermissions})
	return true
}

func equalSecret(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
