package campaign

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// dkimSigner loads dkim.key_file. A key that DKIM cannot use is an error:
// RSA under 1024 bits (RFC 8301 section 3.2), ECDSA (no DKIM algorithm), or
// a PEM block whose type disagrees with its content. RSA under 2048 bits is
// a warning. Errors name the file, never key material.
func (c *Campaign) dkimSigner() (signer crypto.Signer, warning string, err error) {
	name := c.DKIM.KeyFile
	data, err := c.readFile(name)
	if err != nil {
		return nil, "", fmt.Errorf("read DKIM key: %s", fileErr(name, err))
	}
	signer, bits, err := parseDKIMKey(data)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	if bits > 0 && bits < 2048 {
		warning = fmt.Sprintf("%s: RSA key of %d bits; 2048 or more is recommended (RFC 8301 section 3.2)", name, bits)
	}
	return signer, warning, nil
}

// parseDKIMKey decodes the first PEM block; bits is the RSA modulus size, 0
// for Ed25519.
func parseDKIMKey(data []byte) (crypto.Signer, int, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, 0, errors.New("no PEM block found: want an RSA or Ed25519 private key in PEM")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY": // PKCS#1
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, 0, errors.New(`PEM type "RSA PRIVATE KEY" but the content is not a PKCS#1 RSA key`)
		}
	case "PRIVATE KEY": // PKCS#8, RSA or Ed25519
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, 0, errors.New(`PEM type "PRIVATE KEY" but the content is not a PKCS#8 key`)
		}
	case "EC PRIVATE KEY":
		return nil, 0, errors.New("ECDSA keys cannot sign DKIM (RFC 6376, RFC 8463): use RSA or Ed25519")
	case "ENCRYPTED PRIVATE KEY":
		return nil, 0, errors.New("encrypted keys are not supported: decrypt it into a PKCS#8 PEM")
	default:
		return nil, 0, fmt.Errorf("PEM type %q is not a private key: want RSA PRIVATE KEY or PRIVATE KEY", block.Type)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		bits := k.N.BitLen()
		if bits < 1024 {
			return nil, 0, fmt.Errorf("RSA key of %d bits is too weak: DKIM verifiers reject keys under 1024 bits (RFC 8301 section 3.2)", bits)
		}
		return k, bits, nil
	case ed25519.PrivateKey:
		return k, 0, nil
	default:
		return nil, 0, fmt.Errorf("%T cannot sign DKIM: use RSA or Ed25519", key)
	}
}
