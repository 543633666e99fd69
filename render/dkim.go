package render

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
)

// DefaultDKIMHeaders are the fields signed when DKIM.Headers is empty
// (RFC 6376 5.4.1); Reply-To, Sender and the List-Unsubscribe pair are added
// when a message has them, as Gmail and Yahoo want the latter signed.
var DefaultDKIMHeaders = []string{"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type"}

// checkDKIM refuses a configuration go-msgauth would reject at the first
// message, and RSA keys too weak for receivers (RFC 8301: at least 1024 bits).
func checkDKIM(d *DKIM) error {
	if d.Domain == "" || d.Selector == "" {
		return errors.New("domain and selector are required")
	}
	switch k := d.Signer.(type) {
	case nil:
		return errors.New("no private key")
	case *rsa.PrivateKey:
		if k.N.BitLen() < 1024 {
			return fmt.Errorf("RSA key of %d bits is too weak (RFC 8301 wants at least 1024, better 2048)", k.N.BitLen())
		}
	case ed25519.PrivateKey:
	default:
		return fmt.Errorf("unsupported key type %T (want RSA or Ed25519)", d.Signer)
	}
	if len(d.Headers) > 0 {
		hasFrom := false
		for _, h := range d.Headers {
			if err := checkFieldName(h); err != nil {
				return err
			}
			hasFrom = hasFrom || strings.EqualFold(h, "From")
		}
		if !hasFrom {
			return errors.New("headers must include From (RFC 6376 5.4)")
		}
	}
	return nil
}

// sign prepends a DKIM-Signature (relaxed/relaxed, RFC 6376) computed over
// the rendered bytes with go-msgauth; go-mail's own signer breaks once the
// h= list is longer than about 71 characters.
func (r *Renderer) sign(msg []byte) ([]byte, error) {
	keys := r.dkimKeys
	if len(keys) == 0 {
		keys = defaultKeys(msg)
	}
	s, err := dkim.NewSigner(&dkim.SignOptions{
		Domain:                 r.cfg.DKIM.Domain,
		Selector:               r.cfg.DKIM.Selector,
		Signer:                 r.cfg.DKIM.Signer,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             keys,
	})
	if err != nil {
		return nil, fmt.Errorf("dkim: %w", err)
	}
	if _, err := s.Write(msg); err != nil {
		s.Close()
		return nil, fmt.Errorf("dkim: %w", err)
	}
	if err := s.Close(); err != nil {
		return nil, fmt.Errorf("dkim: %w", err)
	}
	sig := s.Signature()
	out := make([]byte, 0, len(sig)+len(msg))
	out = append(out, sig...)
	return append(out, msg...), nil
}

// defaultKeys is DefaultDKIMHeaders plus the optional fields msg carries.
func defaultKeys(msg []byte) []string {
	keys := append([]string(nil), DefaultDKIMHeaders...)
	head := msg
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		head = msg[:i+2]
	}
	for _, h := range []string{"Reply-To", "Sender", "List-Unsubscribe", "List-Unsubscribe-Post"} {
		if bytes.HasPrefix(head, []byte(h+":")) || bytes.Contains(head, []byte("\r\n"+h+":")) {
			keys = append(keys, h)
		}
	}
	return keys
}
