package render

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readPEM reads a PEM fixture from testdata.
func readPEM(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pemOf encodes der as one PEM block of type typ.
func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// relabelPEM gives the first block of p another type, keeping its content.
func relabelPEM(t *testing.T, p []byte, typ string) []byte {
	t.Helper()
	b, _ := pem.Decode(p)
	if b == nil {
		t.Fatal("no PEM block")
	}
	return pemOf(typ, b.Bytes)
}

func TestParseDKIMKey(t *testing.T) {
	rsa2048 := loadKey("dkim-rsa.pem").(*rsa.PrivateKey)
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024PKCS8, err := x509.MarshalPKCS8PrivateKey(rsa1024)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(readPEM(t, "dkim-rsa512.pem"))
	rsa512, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	rsa512PKCS8, err := x509.MarshalPKCS8PrivateKey(rsa512)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecSEC1, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	ecPKCS8, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x25519PKCS8, err := x509.MarshalPKCS8PrivateKey(x25519)
	if err != nil {
		t.Fatal(err)
	}
	edPEM := readPEM(t, "dkim-ed25519.pem")

	for _, tc := range []struct {
		name string
		pem  []byte
		bits int    // for a key that parses
		want string // substring of the error; "" when the key parses
	}{
		{"ed25519 pkcs8", edPEM, 0, ""},
		{"ed25519 after text", append([]byte("# DKIM key for acme.example\n"), edPEM...), 0, ""},
		{"rsa 2048 pkcs8", readPEM(t, "dkim-rsa.pem"), 2048, ""},
		{"rsa 2048 pkcs1", pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsa2048)), 2048, ""},
		{"rsa 1024 pkcs1", pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsa1024)), 1024, ""},
		{"rsa 1024 pkcs8", pemOf("PRIVATE KEY", rsa1024PKCS8), 1024, ""},
		{"rsa 512 pkcs1", readPEM(t, "dkim-rsa512.pem"), 0,
			"RSA key of 512 bits is too weak: DKIM verifiers reject keys under 1024 bits (RFC 8301 section 3.2)"},
		{"rsa 512 pkcs8", pemOf("PRIVATE KEY", rsa512PKCS8), 0, "RSA key of 512 bits is too weak"},
		{"ecdsa sec1", pemOf("EC PRIVATE KEY", ecSEC1), 0,
			"ECDSA keys cannot sign DKIM (RFC 6376, RFC 8463): use RSA or Ed25519"},
		{"ecdsa pkcs8", pemOf("PRIVATE KEY", ecPKCS8), 0, "ECDSA keys cannot sign DKIM"},
		{"x25519 pkcs8", pemOf("PRIVATE KEY", x25519PKCS8), 0, "*ecdh.PrivateKey cannot sign DKIM: use RSA or Ed25519"},
		{"encrypted", pemOf("ENCRYPTED PRIVATE KEY", []byte("opaque")), 0,
			"encrypted keys are not supported: decrypt it into a PKCS#8 PEM"},
		{"public key", pemOf("PUBLIC KEY", []byte("opaque")), 0,
			`PEM type "PUBLIC KEY" is not a private key: want RSA PRIVATE KEY or PRIVATE KEY`},
		{"certificate", pemOf("CERTIFICATE", []byte("opaque")), 0, `PEM type "CERTIFICATE" is not a private key`},
		{"ed25519 labelled pkcs1", relabelPEM(t, edPEM, "RSA PRIVATE KEY"), 0,
			`PEM type "RSA PRIVATE KEY" but the content is not a PKCS#1 RSA key`},
		{"pkcs1 labelled pkcs8", pemOf("PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsa1024)), 0,
			`PEM type "PRIVATE KEY" but the content is not a PKCS#8 key`},
		{"not PEM", []byte("hello"), 0, "no PEM block found: want an RSA or Ed25519 private key in PEM"},
		{"empty", nil, 0, "no PEM block found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			signer, bits, err := ParseDKIMKey(tc.pem)
			if tc.want != "" {
				if err == nil {
					t.Fatalf("got a %T of %d bits, want an error containing %q", signer, bits, tc.want)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("got %q, want it to contain %q", err, tc.want)
				}
				if signer != nil || bits != 0 {
					t.Errorf("got %T and %d bits with the error, want nil and 0", signer, bits)
				}
				if b, _ := pem.Decode(tc.pem); b != nil && len(b.Bytes) >= 6 {
					if strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(b.Bytes)[:8]) {
						t.Errorf("error %q shows key material", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want a key", err)
			}
			if bits != tc.bits {
				t.Errorf("bits: got %d, want %d", bits, tc.bits)
			}
			switch k := signer.(type) {
			case *rsa.PrivateKey:
				if k.N.BitLen() != tc.bits {
					t.Errorf("RSA modulus: got %d bits, want %d", k.N.BitLen(), tc.bits)
				}
			case ed25519.PrivateKey:
				if tc.bits != 0 {
					t.Errorf("got Ed25519, want RSA of %d bits", tc.bits)
				}
			default:
				t.Errorf("got %T, want *rsa.PrivateKey or ed25519.PrivateKey", signer)
			}
		})
	}
}

// A key from ParseDKIMKey signs messages that verify.
func TestParseDKIMKeySigns(t *testing.T) {
	for _, file := range []string{"dkim-rsa.pem", "dkim-ed25519.pem"} {
		t.Run(file, func(t *testing.T) {
			signer, _, err := ParseDKIMKey(readPEM(t, file))
			if err != nil {
				t.Fatal(err)
			}
			cfg := baseConfig()
			cfg.DKIM = &DKIM{Domain: "acme.example", Selector: "s1", Signer: signer}
			m, err := newRenderer(t, cfg).Render(zoe())
			if err != nil {
				t.Fatal(err)
			}
			verifyDKIM(t, m.Data, cfg.DKIM)
		})
	}
}

func TestWeakDKIMKey(t *testing.T) {
	for _, tc := range []struct {
		bits int
		want bool
	}{{0, false}, {1024, true}, {1536, true}, {2047, true}, {2048, false}, {4096, false}} {
		if got := WeakDKIMKey(tc.bits); got != tc.want {
			t.Errorf("WeakDKIMKey(%d): got %v, want %v", tc.bits, got, tc.want)
		}
	}
	if WeakDKIMKey(RecommendedDKIMBits) || !WeakDKIMKey(RecommendedDKIMBits-1) {
		t.Errorf("the threshold is not RecommendedDKIMBits (%d)", RecommendedDKIMBits)
	}
}

func TestCheckDKIMHeaders(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers []string
		want    string // substring of the error; "" when valid
	}{
		{"empty means the default", nil, ""},
		{"from only", []string{"from"}, ""},
		{"reserved names are fine", []string{"From", "To", "Sender", "List-Unsubscribe", "Content-Type"}, ""},
		{"no From", []string{"To", "Subject"}, "headers must include From (RFC 6376 section 5.4)"},
		{"bad name", []string{"From", "X Bad"}, `header name "X Bad": invalid character ' '`},
		{"empty name", []string{"From", ""}, "empty header name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckDKIMHeaders(tc.headers)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("got %v, want nil", err)
			case tc.want != "" && err == nil:
				t.Errorf("got nil, want an error containing %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("got %q, want it to contain %q", err, tc.want)
			}
		})
	}
}
