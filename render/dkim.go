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

// sign returns the DKIM-Signature field (relaxed/relaxed, RFC 6376),
// computed with go-msgauth over the message that is msg with each slot at
// at (of length slot) replaced by parts[i], the bytes splice makes: the
// signature covers the spliced parts without their being copied first.
// go-mail's own signer breaks once the h= list is longer than about 71
// characters.
func (r *Renderer) sign(msg []byte, slot int, at []int, parts [][]byte) (string, error) {
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
		return "", fmt.Errorf("dkim: %w", err)
	}
	var werr error
	pieces(msg, slot, at, parts, func(b []byte) {
		if werr == nil {
			_, werr = s.Write(b)
		}
	})
	if werr != nil {
		s.Close()
		return "", fmt.Errorf("dkim: %w", werr)
	}
	if err := s.Close(); err != nil {
		return "", fmt.Errorf("dkim: %w", err)
	}
	return s.Signature(), nil
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
