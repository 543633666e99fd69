package render

import (
	"crypto"
	"time"
)

// Config is everything the renderer needs to build messages. Paths are
// relative to Dir, the campaign folder, and are never allowed to leave it.
// Template fields hold template source, not file names; file fields hold
// paths. The zero value of every optional field means "not used".
type Config struct {
	// Dir is the campaign folder; every file is opened through os.Root here.
	Dir string
	// From is the From header (RFC 5322 address list, usually one mailbox).
	From string
	// ReplyTo is an optional Reply-To address list.
	ReplyTo string
	// Sender is the Sender mailbox; required when From lists several
	// mailboxes (RFC 5322 section 3.6.2).
	Sender string
	// Subject is a text/template for the Subject header.
	Subject string
	// Name is an optional text/template for the recipient's display name.
	Name string
	// Markdown, HTML and Text are body files (templates). Exactly one of
	// Markdown and HTML is set; Text is optional.
	Markdown, HTML, Text string
	// Layout is an optional html/template file wrapping the body as {{.Body}}.
	Layout string
	// InlineCSS, unless it points to false, copies the rules of the
	// layout's and body's <style> blocks into the style attributes of the
	// elements they select, as many mail clients ignore <style> (see
	// inline.go); what cannot be inlined (@media) stays in the head.
	// nil means on, so that the zero Config inlines.
	InlineCSS *bool
	// Attachments are file path templates, e.g. "invoices/{{.invoice}}.pdf".
	Attachments []string
	// Headers are extra headers; values are text/templates.
	Headers map[string]string
	// Vars are campaign-wide values, available as {{.Vars.name}}.
	Vars map[string]any
	// Group describes the group message (RenderGroup).
	Group Group
	// Unsubscribe adds RFC 2369/8058 List-Unsubscribe headers to individual
	// messages; both fields are templates.
	Unsubscribe Unsubscribe
	// DKIM, when non-nil, signs every message (RFC 6376, relaxed/relaxed).
	DKIM *DKIM
	// Now returns the Date of a message; nil means time.Now.
	Now func() time.Time
	// MessageID returns a unique Message-ID (without angle brackets) for a
	// message; nil means a random one in the From domain.
	MessageID func() string
}

// Group is the visible To of a group message.
type Group struct {
	// To is the visible To header of the group message.
	To string
	// Visible puts the recipients in To instead of Bcc.
	Visible bool
}

// Unsubscribe holds the List-Unsubscribe templates.
type Unsubscribe struct {
	// URL is an https URL template (one-click, RFC 8058).
	URL string
	// Mailto is an optional mailto template without the "mailto:" prefix.
	Mailto string
}

// DKIM configures signing of rendered messages.
type DKIM struct {
	// Domain is the signing domain (d=), whose DNS publishes the key.
	Domain string
	// Selector names the key record (s=) under Domain.
	Selector string
	// Signer is the private key: *rsa.PrivateKey or ed25519.PrivateKey.
	Signer crypto.Signer
	// Headers are the header fields to sign, in order (h=). Empty means
	// render's default, which a caller should leave to render rather than
	// copy: DefaultDKIMHeaders, then whichever of Reply-To, Sender,
	// List-Unsubscribe and List-Unsubscribe-Post the message carries
	// (RFC 6376 section 5.4.1). A list given here is signed as it is.
	Headers []string
}

// Recipient is one row of the recipient list.
type Recipient struct {
	// Row is the recipient's line in the CSV file, used in error messages.
	Row int
	// Email is the recipient's address (bare addr-spec).
	Email string
	// Fields maps every CSV column header to the row's value.
	Fields map[string]string
}

// Message is one complete rendered message and its envelope.
type Message struct {
	// From is the envelope sender (bare address): Sender if set, else From.
	From string
	// To are the envelope recipients (bare addresses).
	To []string
	// MessageID is the Message-ID without angle brackets.
	MessageID string
	// Subject is the rendered, unencoded subject.
	Subject string
	// Data is the complete RFC 5322 message with CRLF line endings.
	Data []byte
}
