package campaign

import "strings"

// AddrKey is the one rule for "the same recipient": the address trimmed and
// lower-cased as a whole. Duplicates in the list, suppress lists, bounces and
// the journal all compare addresses through it. RFC 5321 section 2.4 lets a
// mailbox's local part be case-sensitive, but no real mailbox relies on it,
// and never mailing someone who unsubscribed as Ann@ matters more.
func AddrKey(addr string) string {
	return strings.ToLower(strings.TrimSpace(addr))
}
