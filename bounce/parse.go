package bounce

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"strings"
)

// Kind is what a message means for its recipients.
type Kind int

// The kinds of message, from harmless to final.
const (
	// NotBounce is anything that is not a delivery failure: an auto-reply,
	// a success notification, a human answer.
	NotBounce Kind = iota
	// Soft is a temporary failure (status 4.x.x or Action: delayed): the
	// address may work later, so it is only reported.
	Soft
	// Hard is a permanent failure (status 5.x.x): the address is suppressed.
	Hard
)

// String returns "hard", "soft" or "not a bounce", as reports print it.
func (k Kind) String() string {
	switch k {
	case Soft:
		return "soft"
	case Hard:
		return "hard"
	}
	return "not a bounce"
}

// Rcpt is what a bounce says about one recipient.
type Rcpt struct {
	// Addr is the address the campaign sent to: the Original-Recipient
	// when the report has one (aliases may rewrite the Final-Recipient),
	// else the Final-Recipient, or the address a text bounce names.
	Addr string
	// Status is the enhanced status code of RFC 3463, e.g. "5.1.1".
	Status string
	// Action is the RFC 3464 action ("failed", "delayed", ...); text bounces
	// get "failed" or "delayed" from their wording.
	Action string
	// Diagnostic is the remote server's reply or the reason text, on one line.
	Diagnostic string
	// Kind classifies this recipient alone.
	Kind Kind
}

// Report is the meaning of one message found in the bounce mailbox.
type Report struct {
	// Kind is Hard when any recipient failed permanently, else Soft when any
	// failed temporarily, else NotBounce.
	Kind Kind
	// Format names what was recognised: "rfc3464", "qmail", "exim",
	// "auto-reply" or "other".
	Format string
	// Recipients lists the failed (or delayed) recipients, in report order.
	Recipients []Rcpt
	// OriginalMessageID is the Message-ID of the bounced message, angle
	// brackets included, or "" when the bounce does not quote it.
	OriginalMessageID string
	// Subject and From describe the bounce itself, for reports.
	Subject, From string
	// Reason says why a message is NotBounce.
	Reason string
}

// ErrMalformed is matched by errors.Is for every message Parse cannot
// understand. The processor keeps such messages for a human.
var ErrMalformed = errors.New("malformed message")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Limits against hostile input.
const (
	maxDepth = 8
	maxParts = 64
)

// part is one decoded leaf of the MIME tree.
type part struct {
	mediaType string
	body      []byte
}

// Parse reads one raw message and classifies it. Recognised, in order:
//  1. an RFC 3464 delivery status notification (message/delivery-status in
//     a multipart/report, at any depth), as sent by Postfix, Gmail,
//     Microsoft 365, modern Exim and most MTAs;
//  2. qmail's "Hi. This is the qmail-send program" text;
//  3. Exim's older "This message was created automatically by mail delivery
//     software" text, failures and delay warnings;
//  4. auto-replies (RFC 3834 Auto-Submitted, vacation headers and subjects),
//     which are NotBounce.
//
// It returns an error matching ErrMalformed for a message that does not parse
// as RFC 5322/MIME, a report without recipients, or a message that looks like
// a bounce (from MAILER-DAEMON, "Undelivered" subjects) in a format it does
// not know: such a message must be looked at, not deleted.
func Parse(raw []byte) (*Report, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, malformed("header: %v", err)
	}
	dec := new(mime.WordDecoder)
	subject, _ := dec.DecodeHeader(msg.Header.Get("Subject"))
	rep := &Report{Subject: oneLine(subject), From: oneLine(msg.Header.Get("From"))}

	var parts []part
	if err := walk(msg.Header, msg.Body, 0, &parts); err != nil {
		return nil, err
	}
	for _, p := range parts {
		if rep.OriginalMessageID == "" && isOriginal(p.mediaType) {
			rep.OriginalMessageID = headerMessageID(p.body)
		}
	}
	for _, p := range parts {
		if p.mediaType == "message/delivery-status" || p.mediaType == "message/global-delivery-status" {
			return parseDSN(rep, p.body)
		}
	}
	ct, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if ct == "multipart/report" && strings.EqualFold(params["report-type"], "delivery-status") {
		return nil, malformed("multipart/report without a message/delivery-status part")
	}

	text := plainText(parts)
	switch {
	case strings.Contains(text, "This is the qmail-send program"):
		return parseQmail(rep, text)
	case strings.Contains(text, "This message was created automatically by mail delivery software"):
		return parseExim(rep, text)
	}
	if why := autoReply(msg.Header, rep.Subject); why != "" {
		rep.Format, rep.Reason = "auto-reply", why
		return rep, nil
	}
	if looksLikeBounce(rep.From, rep.Subject) {
		return nil, malformed("looks like a bounce (from %q, subject %q) but no known format", rep.From, rep.Subject)
	}
	rep.Format, rep.Reason = "other", "no delivery status"
	return rep, nil
}

// header is what walk needs of mail.Header and textproto.MIMEHeader.
type header interface{ Get(string) string }

// walk descends the MIME tree, decoding transfer encodings, and collects the
// leaves. An attached message (message/rfc822) is a leaf: it is the bounced
// original, not part of the report.
func walk(h header, body io.Reader, depth int, out *[]part) error {
	if depth > maxDepth {
		return malformed("MIME nesting deeper than %d", maxDepth)
	}
	ctHeader := h.Get("Content-Type")
	mediaType, params := "text/plain", map[string]string{}
	if ctHeader != "" {
		var err error
		mediaType, params, err = mime.ParseMediaType(ctHeader)
		if err != nil {
			return malformed("content-type %q: %v", oneLine(ctHeader), err)
		}
	}
	if !strings.HasPrefix(mediaType, "multipart/") {
		b, err := decode(h.Get("Content-Transfer-Encoding"), body)
		if err != nil {
			return malformed("%s body: %v", mediaType, err)
		}
		if len(*out) >= maxParts {
			return malformed("more than %d MIME parts", maxParts)
		}
		*out = append(*out, part{mediaType: mediaType, body: b})
		return nil
	}
	boundary := params["boundary"]
	if boundary == "" {
		return malformed("%s without boundary", mediaType)
	}
	mr := multipart.NewReader(body, boundary)
	for n := 0; ; n++ {
		if n >= maxParts {
			return malformed("more than %d MIME parts", maxParts)
		}
		p, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			if n == 0 {
				return malformed("%s has no parts", mediaType)
			}
			return nil
		}
		if err != nil {
			return malformed("%s: %v", mediaType, err)
		}
		if err := walk(p.Header, p, depth+1, out); err != nil {
			return err
		}
	}
}

func decode(cte string, r io.Reader) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		// MTAs wrap base64 in lines; the decoder wants them gone.
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		b = bytes.Map(func(r rune) rune {
			if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, b)
		return base64.StdEncoding.DecodeString(string(b))
	case "quoted-printable":
		return io.ReadAll(quotedprintable.NewReader(r))
	}
	return io.ReadAll(r)
}

func isOriginal(mediaType string) bool {
	switch mediaType {
	case "message/rfc822", "text/rfc822-headers", "message/global", "message/global-headers":
		return true
	}
	return false
}

// headerMessageID reads the Message-ID from a message or a bare header block.
func headerMessageID(b []byte) string {
	// A header-only part may lack the blank line that ends a header.
	m, err := mail.ReadMessage(io.MultiReader(bytes.NewReader(b), strings.NewReader("\r\n\r\n")))
	if err == nil {
		if id := messageID(m.Header.Get("Message-Id")); id != "" {
			return id
		}
	}
	return scanMessageID(string(b))
}

var messageIDLine = regexp.MustCompile(`(?im)^Message-ID:[ \t]*(<[^<>\s]+>)`)

// scanMessageID finds a Message-ID header line anywhere in text, for the
// copy of the original message that text bounces append.
func scanMessageID(text string) string {
	if m := messageIDLine.FindStringSubmatch(text); m != nil {
		return m[1]
	}
	return ""
}

func messageID(v string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return ""
	}
	if !strings.HasPrefix(v, "<") {
		v = "<" + v + ">"
	}
	return v
}

func plainText(parts []part) string {
	var b strings.Builder
	for _, p := range parts {
		if p.mediaType == "text/plain" {
			b.Write(p.body)
			b.WriteString("\n")
		}
	}
	return strings.ReplaceAll(b.String(), "\r\n", "\n")
}

// parseDSN reads the per-recipient fields of RFC 3464 section 2.3.
func parseDSN(rep *Report, body []byte) (*Report, error) {
	rep.Format = "rfc3464"
	groups := fieldGroups(string(body))
	if len(groups) == 0 {
		return nil, malformed("empty delivery-status")
	}
	// Gmail repeats the original Message-ID among the per-message fields.
	if rep.OriginalMessageID == "" {
		rep.OriginalMessageID = messageID(groups[0]["x-original-message-id"])
	}
	for _, g := range groups {
		addr := dsnAddr(g["original-recipient"])
		if addr == "" {
			addr = dsnAddr(g["final-recipient"])
		}
		if addr == "" {
			continue // per-message fields
		}
		action := strings.ToLower(strings.TrimSpace(g["action"]))
		if i := strings.IndexAny(action, " ("); i >= 0 {
			action = action[:i]
		}
		r := Rcpt{Addr: addr, Action: action, Diagnostic: oneLine(g["diagnostic-code"])}
		r.Status = dsnStatus(g["status"], r.Diagnostic)
		if r.Status == "" {
			return nil, malformed("recipient %s: no usable Status", addr)
		}
		r.Kind = classify(action, r.Status)
		if r.Kind == NotBounce {
			continue // delivered, relayed, expanded
		}
		rep.Recipients = append(rep.Recipients, r)
	}
	return finish(rep, "delivery-status names no recipient")
}

// fieldGroups splits a delivery-status body into its blank-line separated
// groups of fields, unfolding continuation lines; names are lower-cased.
func fieldGroups(body string) []map[string]string {
	var groups []map[string]string
	cur := map[string]string{}
	last := ""
	flush := func() {
		if len(cur) > 0 {
			groups = append(groups, cur)
		}
		cur, last = map[string]string{}, ""
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				cur[last] += " " + strings.TrimSpace(line)
			}
		default:
			name, value, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(name))
			if _, dup := cur[last]; !dup {
				cur[last] = strings.TrimSpace(value)
			}
		}
	}
	flush()
	return groups
}

// dsnAddr reads "rfc822; <user@example.org>" (RFC 3464 section 2.3.2).
func dsnAddr(v string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return ""
	}
	if typ, addr, ok := strings.Cut(v, ";"); ok {
		if t := strings.ToLower(strings.TrimSpace(typ)); t != "rfc822" && t != "utf-8" {
			return "" // an X.400 or other non-Internet address
		}
		v = addr
	}
	v = strings.Trim(strings.TrimSpace(v), "<>")
	if !strings.Contains(v, "@") || strings.ContainsAny(v, " \t\r\n") {
		return ""
	}
	return v
}

var (
	// enhanced status code (RFC 3463): class.subject.detail
	enhancedRe = regexp.MustCompile(`([245])\.(\d{1,3})\.(\d{1,3})`)
	// an SMTP reply code followed by an enhanced code, "550 5.1.1" or "550-5.1.1"
	replyEnhancedRe = regexp.MustCompile(`\b[245]\d\d[ -]([245]\.\d{1,3}\.\d{1,3})\b`)
	// an SMTP reply code alone
	replyRe = regexp.MustCompile(`(?:^|[\s;:])([245])\d\d(?:[\s-]|$)`)
)

// dsnStatus takes the Status field, but when it is missing, malformed or
// only says x.0.0 and the diagnostic carries a precise code of the same class
// (Microsoft 365 writes "Status: 5.0.0" with "550 5.4.1 ..." in
// Diagnostic-Code), it takes the precise one.
func dsnStatus(status, diag string) string {
	s := ""
	if m := enhancedRe.FindString(status); m != "" && strings.HasPrefix(strings.TrimSpace(status), m) {
		s = m
	}
	d := diagStatus(diag)
	switch {
	case s == "":
		return d
	case strings.HasSuffix(s, ".0.0") && d != "" && d[0] == s[0] && !strings.HasSuffix(d, ".0.0"):
		return d
	}
	return s
}

// diagStatus extracts a status from free text: an enhanced code after a
// reply code, else a standalone enhanced code not part of an IP address or
// version, else the class of a bare reply code as x.0.0.
func diagStatus(text string) string {
	if m := replyEnhancedRe.FindStringSubmatch(text); m != nil {
		return m[1]
	}
	for _, loc := range enhancedRe.FindAllStringIndex(text, -1) {
		before, after := byte(' '), byte(' ')
		if loc[0] > 0 {
			before = text[loc[0]-1]
		}
		if loc[1] < len(text) {
			after = text[loc[1]]
		}
		partOfNumber := isDigit(before) || before == '.' || isDigit(after) ||
			(after == '.' && loc[1]+1 < len(text) && isDigit(text[loc[1]+1]))
		if partOfNumber {
			continue // an IP address or a version, not a status
		}
		return text[loc[0]:loc[1]]
	}
	if m := replyRe.FindStringSubmatch(text); m != nil && m[1] != "2" {
		return m[1] + ".0.0"
	}
	return ""
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// classify applies the rule: delayed is soft whatever the code, then 5.x.x
// is hard and 4.x.x soft; success codes and actions are no bounce.
func classify(action, status string) Kind {
	switch action {
	case "delivered", "relayed", "expanded":
		return NotBounce
	case "delayed":
		return Soft
	}
	switch {
	case strings.HasPrefix(status, "5."):
		return Hard
	case strings.HasPrefix(status, "4."):
		return Soft
	}
	return NotBounce
}

func finish(rep *Report, none string) (*Report, error) {
	if len(rep.Recipients) == 0 {
		if rep.Format == "rfc3464" {
			// A report of successful deliveries only.
			rep.Reason = "delivery status without failures"
			return rep, nil
		}
		return nil, malformed("%s bounce: %s", rep.Format, none)
	}
	for _, r := range rep.Recipients {
		if r.Kind > rep.Kind {
			rep.Kind = r.Kind
		}
	}
	return rep, nil
}

var qmailRcpt = regexp.MustCompile(`^<([^<>\s]+@[^<>\s]+)>:\s*(.*)$`)

// parseQmail reads qmail-send's bounce: "<addr>:" lines each followed by
// reason lines, then "--- Below this line is a copy of the message.".
func parseQmail(rep *Report, text string) (*Report, error) {
	rep.Format = "qmail"
	body, original, _ := strings.Cut(text, "--- Below this line is a copy of the message.")
	if rep.OriginalMessageID == "" {
		rep.OriginalMessageID = scanMessageID(original)
	}
	permanent := strings.Contains(body, "This is a permanent error")
	var cur *Rcpt
	var reason []string
	end := func() {
		if cur == nil {
			return
		}
		cur.Diagnostic = oneLine(strings.Join(reason, " "))
		cur.Status = diagStatus(cur.Diagnostic)
		if cur.Status == "" {
			cur.Status = "4.0.0"
			if permanent {
				cur.Status = "5.0.0"
			}
		}
		cur.Action = "failed"
		cur.Kind = classify(cur.Action, cur.Status)
		rep.Recipients = append(rep.Recipients, *cur)
		cur, reason = nil, nil
	}
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimSpace(line)
		if m := qmailRcpt.FindStringSubmatch(line); m != nil {
			end()
			cur = &Rcpt{Addr: m[1]}
			if m[2] != "" {
				reason = append(reason, m[2])
			}
			continue
		}
		if cur == nil {
			continue
		}
		if line == "" {
			end()
			continue
		}
		reason = append(reason, line)
	}
	end()
	return finish(rep, "no <address>: lines")
}

// parseExim reads Exim's plain-text failure ("The following address(es)
// failed:") and delay ("has not yet been delivered") messages: indented
// addresses, each followed by more deeply indented reason lines.
func parseExim(rep *Report, text string) (*Report, error) {
	rep.Format = "exim"
	body, original := text, ""
	if i := strings.Index(text, "\n------ This is a copy of the message"); i >= 0 {
		body, original = text[:i], text[i:]
	}
	if rep.OriginalMessageID == "" {
		rep.OriginalMessageID = scanMessageID(original)
	}
	delayed := strings.Contains(body, "has not yet been delivered")
	action, fallback := "failed", "5.0.0"
	if delayed {
		action, fallback = "delayed", "4.0.0"
	}
	lines := strings.Split(body, "\n")
	start := -1
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasSuffix(t, "failed:") || (delayed && strings.HasSuffix(t, "delivered is:")) || (delayed && strings.HasSuffix(t, "delivered are:")) {
			start = i + 1
			break
		}
	}
	if start < 0 {
		return nil, malformed("exim bounce without a list of addresses")
	}
	var cur *Rcpt
	var reason []string
	addrIndent := -1
	end := func() {
		if cur == nil {
			return
		}
		cur.Diagnostic = oneLine(strings.Join(reason, " "))
		cur.Status = diagStatus(cur.Diagnostic)
		if cur.Status == "" || (cur.Status[0] == '2') {
			cur.Status = fallback
		}
		cur.Action = action
		cur.Kind = classify(action, cur.Status)
		rep.Recipients = append(rep.Recipients, *cur)
		cur, reason = nil, nil
	}
	for _, l := range lines[start:] {
		l = strings.TrimRight(l, "\r")
		t := strings.TrimSpace(l)
		if t == "" {
			continue
		}
		indent := len(l) - len(strings.TrimLeft(l, " \t"))
		if indent == 0 {
			break // the explanatory text after the list
		}
		if addrIndent < 0 || indent <= addrIndent {
			end()
			addrIndent = indent
			addr := strings.Trim(strings.Fields(t)[0], "<>")
			if !strings.Contains(addr, "@") {
				// "pipe to |/usr/bin/x" and other non-address targets.
				continue
			}
			cur = &Rcpt{Addr: addr}
			continue
		}
		if cur != nil {
			reason = append(reason, t)
		}
	}
	end()
	return finish(rep, "no addresses in the list")
}

// autoReply recognises automatic answers (RFC 3834 and common vendor
// headers). Checked only after the bounce formats, because MTAs mark their
// own bounces Auto-Submitted too.
func autoReply(h mail.Header, subject string) string {
	if v := strings.ToLower(strings.TrimSpace(h.Get("Auto-Submitted"))); v != "" && v != "no" {
		return "auto-reply (Auto-Submitted: " + v + ")"
	}
	for _, name := range []string{"X-Autoreply", "X-Autorespond"} {
		if h.Get(name) != "" {
			return "auto-reply (" + name + ")"
		}
	}
	if p := strings.ToLower(h.Get("Precedence")); p == "auto_reply" {
		return "auto-reply (Precedence: auto_reply)"
	}
	s := strings.ToLower(subject)
	for _, prefix := range []string{"auto:", "automatic reply", "autoreply", "auto-reply", "out of office", "out of the office", "abwesenheitsnotiz"} {
		if strings.HasPrefix(s, prefix) {
			return "auto-reply (subject)"
		}
	}
	return ""
}

// looksLikeBounce spots the usual senders and subjects of bounces, so that an
// unknown bounce format is kept for a human instead of passing as mail.
func looksLikeBounce(from, subject string) bool {
	f, s := strings.ToLower(from), strings.ToLower(subject)
	if strings.Contains(f, "mailer-daemon@") || strings.Contains(f, "postmaster@") {
		return true
	}
	for _, p := range []string{"undeliver", "delivery status notification", "delivery failure", "mail delivery failed", "failure notice", "returned mail", "delivery has failed"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// oneLine collapses whitespace, including folded lines, to single spaces.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
