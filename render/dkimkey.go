package render

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// RFC 8301 section 3.2: signers MUST use RSA keys of at least 1024 bits and
// SHOULD use at least 2048; verifiers MUST NOT accept signatures made with
// a smaller key than 1024 bits.
const (
	minDKIMBits = 1024
	// RecommendedDKIMBits is the RSA key size RFC 8301 section 3.2 says a
	// signer SHOULD reach; a smaller key still signs (see WeakDKIMKey).
	RecommendedDKIMBits = 2048
)

// ParseDKIMKey decodes the first PEM block of pemData into a key DKIM can
// sign with: RSA in PKCS#1 ("RSA PRIVATE KEY") or PKCS#8 ("PRIVATE KEY"),
// or Ed25519 in PKCS#8 (RFC 8463). bits is the RSA modulus size, 0 for
// Ed25519. It is an error when there is no PEM block, when the block is an
// ECDSA key (no DKIM algorithm), an encrypted key or not a private key, when
// the content disagrees with the PEM type, or when an RSA key has fewer
// than 1024 bits (RFC 8301 section 3.2). Errors never hold key material;
// the caller adds the file name.
func ParseDKIMKey(pemData []byte) (signer crypto.Signer, bits int, err error) {
	block, _ := pem.Decode(pemData)
	if block == nil {
		return nil, 0, errors.New("no PEM block found: want an RSA or Ed25519 private key in PEM")
	}
	var key any
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
		return nil, 0, errECDSA
	case "ENCRYPTED PRIVATE KEY":
		return nil, 0, errors.New("encrypted keys are not supported: decrypt it into a PKCS#8 PEM")
	default:
		return nil, 0, fmt.Errorf("PEM type %q is not a private key: want RSA PRIVATE KEY or PRIVATE KEY", block.Type)
	}
	if bits, err = dkimKeyBits(key); err != nil {
		return nil, 0, err
	}
	return key.(crypto.Signer), bits, nil
}

// WeakDKIMKey reports whether an RSA key of bits, as ParseDKIMKey returns
// them, is under RecommendedDKIMBits: it signs, but deserves a warning
// (RFC 8301 section 3.2). bits 0, an Ed25519 key, is never weak.
func WeakDKIMKey(bits int) bool {
	return bits > 0 && bits < RecommendedDKIMBits
}

var errECDSA = errors.New("ECDSA keys cannot sign DKIM (RFC 6376, RFC 8463): use RSA or Ed25519")

// dkimKeyBits is the key rule shared by ParseDKIMKey and New: an RSA key of
// at least 1024 bits (its size is returned) or an Ed25519 key (0).
func dkimKeyBits(key any) (int, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k == nil {
			return 0, errNoKey
		}
		bits := k.N.BitLen()
		if bits < minDKIMBits {
			return 0, fmt.Errorf("RSA key of %d bits is too weak: DKIM verifiers reject keys under %d bits (RFC 8301 section 3.2)", bits, minDKIMBits)
		}
		return bits, nil
	case ed25519.PrivateKey:
		if len(k) == 0 {
			return 0, errNoKey
		}
		return 0, nil
	case *ecdsa.PrivateKey:
		return 0, errECDSA
	case nil:
		return 0, errNoKey
	default:
		return 0, fmt.Errorf("%T cannot sign DKIM: use RSA or Ed25519", key)
	}
}

var errNoKey = errors.New("no private key")
