package journal

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// NodeKeyFile and NodePubFile are the names, in the data directory, of the
// node's Ed25519 key (PKCS #8 PEM, mode 0600) and of its public key (PKIX
// PEM, "PUBLIC KEY", mode 0644: the file another node trusts with
// --trust-key). Both are what `openssl pkey` reads and writes.
const (
	NodeKeyFile = "node.key"
	NodePubFile = "node.pub"
)

// LoadNodeKey reads dataDir/node.key, creating it (and node.pub beside it)
// at first start. The key is never logged.
func LoadNodeKey(dataDir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dataDir, NodeKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		key, err := parsePrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("node key %s: %w; move it away to have a new one made (signatures made with it will then name an unknown key)", path, err)
		}
		if _, err := os.Stat(filepath.Join(dataDir, NodePubFile)); errors.Is(err, os.ErrNotExist) {
			if err := writePublicKey(dataDir, key); err != nil {
				return nil, err
			}
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read node key: %w", err)
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate node key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode node key: %w", err)
	}
	if err := writeFileSync(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("create node key: %w", err)
	}
	if err := writePublicKey(dataDir, key); err != nil {
		return nil, err
	}
	return key, nil
}

func parsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM \"PRIVATE KEY\" (PKCS #8)")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an Ed25519 key", k)
	}
	return key, nil
}

// MarshalPublicKey returns pub as a PEM "PUBLIC KEY" block (PKIX), the
// format of node.pub and of --trust-key files.
func MarshalPublicKey(pub ed25519.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err) // an ed25519.PublicKey always encodes
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func writePublicKey(dataDir string, key ed25519.PrivateKey) error {
	path := filepath.Join(dataDir, NodePubFile)
	if err := writeFileSync(path, MarshalPublicKey(key.Public().(ed25519.PublicKey)), 0o644); err != nil {
		return fmt.Errorf("write node public key: %w", err)
	}
	return nil
}

// writeFileSync creates path (which must not exist) with mode and data,
// durably.
func writeFileSync(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}

// ParsePublicKeys reads the Ed25519 public keys of PEM "PUBLIC KEY" (PKIX)
// blocks, one or more, as node.pub holds and `openssl pkey -pubout`
// writes. Text around the blocks is ignored; a file with no key is an
// error.
func ParsePublicKeys(b []byte) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("a PEM %q block where a \"PUBLIC KEY\" was expected (give node.pub, not node.key)", blk.Type)
		}
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, err
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("a %T, not an Ed25519 key", k)
		}
		keys = append(keys, pub)
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM \"PUBLIC KEY\" block (the format of a node's node.pub)")
	}
	return keys, nil
}
