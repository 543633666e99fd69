package campaign

import (
	"crypto"
	"fmt"

	"github.com/mailrun/mailrun/render"
)

// dkimSigner loads dkim.key_file with render's key rules
// (render.ParseDKIMKey: an error for a key DKIM cannot use,
// render.WeakDKIMKey: a warning). Errors name the file, never key material.
func (c *Campaign) dkimSigner() (signer crypto.Signer, warning string, err error) {
	name := c.DKIM.KeyFile
	data, err := c.readFile(name)
	if err != nil {
		return nil, "", fmt.Errorf("read DKIM key: %s", fileErr(name, err))
	}
	signer, bits, err := render.ParseDKIMKey(data)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	if render.WeakDKIMKey(bits) {
		warning = fmt.Sprintf("%s: RSA key of %d bits; %d or more is recommended (RFC 8301 section 3.2)", name, bits, render.RecommendedDKIMBits)
	}
	return signer, warning, nil
}
