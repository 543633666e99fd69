package render

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
)

// DefaultDKIMHeaders are the fields signed when DKIM.Headers is empty
// (RFC 6376 section 5.4.1); defaultKeys adds Reply-To, Sender and the
// List-Unsubscribe pair when a message has them, as Gmail and Yahoo want the
// latter signed.
var DefaultDKIMHeaders = []string{"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type"}

// checkDKIM refuses a configuration go-msgauth would reject at the first
// message, keys DKIM cannot use or receivers reject (dkimKeyBits), and a bad
// h= list (CheckDKIMHeaders).
func checkDKIM(d *DKIM) error {
	if d.Domain == "" || d.Selector == "" {
		return errors.New("domain and selector are required")
	}
	if _, err := dkimKeyBits(d.Signer); err != nil {
		return err
	}
	return CheckDKIMHeaders(d.Headers)
}

// CheckDKIMHeaders is the one rule for DKIM.Headers, the h= list: every
// name has the syntax of RFC 5322 section 2.2 and From is among them (RFC
// 6376 section 5.4). An empty list is valid: it means render's default
// (see DKIM.Headers). The error names the first bad name.
func CheckDKIMHeaders(names []string) error {
	if len(names) == 0 {
		return nil
	}
	hasFrom := false
	for _, h := range names {
		if err := checkFieldName(h); err != nil {
			return err
		}
		hasFrom = hasFrom || strings.EqualFold(h, "From")
	}
	if !hasFrom {
		return errors.New("headers must include From (RFC 6376 section 5.4)")
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
