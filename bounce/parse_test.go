package bounce

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseSamples(t *testing.T) {
	tests := []struct {
		file    string
		kind    Kind
		format  string
		rcpts   []Rcpt
		origID  string
		wantErr bool
	}{
		{file: "postfix.eml", kind: Hard, format: "rfc3464", origID: "<group.20261124101521.7f3a@acme.example>", rcpts: []Rcpt{
			{Addr: "nobody@example.net", Status: "5.1.1", Action: "failed", Kind: Hard,
				Diagnostic: "smtp; 550 5.1.1 <nobody@example.net>: Recipient address rejected: User unknown in virtual mailbox table"},
			{Addr: "Gone.User@Example.NET", Status: "5.1.1", Action: "failed", Kind: Hard,
				Diagnostic: "smtp; 550 5.1.1 <Gone.User@Example.NET>: Recipient address rejected: User unknown in virtual mailbox table"},
		}},
		{file: "exim.eml", kind: Hard, format: "exim", origID: "<00003.20261124110245.9be0@acme.example>", rcpts: []Rcpt{
			{Addr: "olduser@example.org", Status: "5.1.1", Action: "failed", Kind: Hard,
				Diagnostic: "host mx.example.org [192.0.2.77] SMTP error from remote mail server after RCPT TO:<olduser@example.org>: 550 5.1.1 <olduser@example.org>: Recipient address rejected: User unknown"},
		}},
		{file: "gmail.eml", kind: Hard, format: "rfc3464", origID: "<00007.20261124130510.77ab@acme.example>", rcpts: []Rcpt{
			{Addr: "no-such-user@gmail.com", Status: "5.1.1", Action: "failed", Kind: Hard,
				Diagnostic: "smtp; 550-5.1.1 The email account that you tried to reach does not exist. Please try 550-5.1.1 double-checking the recipient's email address for typos or 550-5.1.1 unnecessary spaces. For more information, go to 550 5.1.1 https://support.google.com/mail/?p=NoSuchUser a640c23a62f3a-b7359e8f5c1si123456766b.412 - gsmtp"},
		}},
		{file: "microsoft365.eml", kind: Hard, format: "rfc3464", origID: "<00009.20261124143105.0c3e@acme.example>", rcpts: []Rcpt{
			{Addr: "nobody@contoso.com", Status: "5.1.10", Action: "failed", Kind: Hard,
				Diagnostic: "smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"},
			// Status says only 5.0.0; the precise code is in Diagnostic-Code.
			{Addr: "blocked@contoso.com", Status: "5.4.1", Action: "failed", Kind: Hard,
				Diagnostic: "smtp;550 5.4.1 Recipient address rejected: Access denied. AS(201806281) [AM4PEPF00027A5F.eurprd04.prod.outlook.com]"},
		}},
		{file: "qmail.eml", kind: Hard, format: "qmail", origID: "<00005.20261124124009.51aa@acme.example>", rcpts: []Rcpt{
			{Addr: "nosuch@example.com", Status: "5.1.1", Action: "failed", Kind: Hard,
				Diagnostic: "Sorry, no mailbox here by that name. (#5.1.1)"},
		}},
		{file: "delayed.eml", kind: Soft, format: "rfc3464", origID: "<00004.20261125101139.c2d1@acme.example>", rcpts: []Rcpt{
			{Addr: "slow@example.com", Status: "4.4.1", Action: "delayed", Kind: Soft,
				Diagnostic: "X-Postfix; connect to mx.example.com[203.0.113.9]:25: Connection timed out"},
		}},
		{file: "autoreply.eml", kind: NotBounce, format: "auto-reply"},
		{file: "malformed.eml", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "bounces", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			rep, err := Parse(raw)
			if tt.wantErr {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("got report %+v, error %v; want an error matching ErrMalformed", rep, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if rep.Kind != tt.kind {
				t.Errorf("kind: got %v, want %v", rep.Kind, tt.kind)
			}
			if rep.Format != tt.format {
				t.Errorf("format: got %q, want %q", rep.Format, tt.format)
			}
			if rep.OriginalMessageID != tt.origID && tt.origID != "" {
				t.Errorf("original Message-ID: got %q, want %q", rep.OriginalMessageID, tt.origID)
			}
			if !reflect.DeepEqual(rep.Recipients, tt.rcpts) {
				t.Errorf("recipients:\ngot  %+v\nwant %+v", rep.Recipients, tt.rcpts)
			}
			// CRLF line endings, as IMAP and POP3 deliver them, must not change anything.
			crlf := []byte(strings.ReplaceAll(string(raw), "\n", "\r\n"))
			rep2, err := Parse(crlf)
			if err != nil {
				t.Fatalf("parse with CRLF: %v", err)
			}
			if !reflect.DeepEqual(rep2, rep) {
				t.Errorf("CRLF changes the report:\ngot  %+v\nwant %+v", rep2, rep)
			}
		})
	}
}

// Edge cases written inline, each small enough to read at a glance.
func TestParseInline(t *testing.T) {
	const dsnHead = "From: MAILER-DAEMON@mx.example\nSubject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\n\n--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example\n\n"
	tests := []struct {
		name    string
		raw     string
		kind    Kind
		rcpts   []Rcpt
		wantErr bool
	}{
		{name: "status only in diagnostic", raw: dsnHead + "Final-Recipient: rfc822; a@example.org\nAction: failed\nDiagnostic-Code: smtp; 550 5.1.1 unknown\n\n--B--\n",
			kind: Hard, rcpts: []Rcpt{{Addr: "a@example.org", Status: "5.1.1", Action: "failed", Diagnostic: "smtp; 550 5.1.1 unknown", Kind: Hard}}},
		{name: "bare reply code", raw: dsnHead + "Final-Recipient: rfc822; a@example.org\nAction: failed\nDiagnostic-Code: smtp; 452 mailbox full\n\n--B--\n",
			kind: Soft, rcpts: []Rcpt{{Addr: "a@example.org", Status: "4.0.0", Action: "failed", Diagnostic: "smtp; 452 mailbox full", Kind: Soft}}},
		{name: "original recipient wins", raw: dsnHead + "Original-Recipient: rfc822;list@example.org\nFinal-Recipient: rfc822; real@example.net\nAction: failed\nStatus: 5.2.1\n\n--B--\n",
			kind: Hard, rcpts: []Rcpt{{Addr: "list@example.org", Status: "5.2.1", Action: "failed", Kind: Hard}}},
		{name: "success DSN is not a bounce", raw: dsnHead + "Final-Recipient: rfc822; a@example.org\nAction: delivered\nStatus: 2.0.0\n\n--B--\n",
			kind: NotBounce},
		{name: "delayed with 5xx status stays soft", raw: dsnHead + "Final-Recipient: rfc822; a@example.org\nAction: delayed\nStatus: 5.0.0\n\n--B--\n",
			kind: Soft, rcpts: []Rcpt{{Addr: "a@example.org", Status: "5.0.0", Action: "delayed", Kind: Soft}}},
		// The address is text inside a bounce, never dialled: it must start
		// with 5 to look like an enhanced status code (5.9.12).
		{name: "IP address is not a status", raw: dsnHead + "Final-Recipient: rfc822; a@example.org\nAction: failed\nDiagnostic-Code: X-Postfix; host 5.9.12.34 refused: 554 no\n\n--B--\n",
			kind: Hard, rcpts: []Rcpt{{Addr: "a@example.org", Status: "5.0.0", Action: "failed", Diagnostic: "X-Postfix; host 5.9.12.34 refused: 554 no", Kind: Hard}}},
		{name: "recipient without status", raw: dsnHead + "Final-Recipient: rfc822; a@example.org\nAction: failed\n\n--B--\n", wantErr: true},
		{name: "report without delivery-status", raw: "From: x@example\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\n\n--B\nContent-Type: text/plain\n\nhi\n--B--\n", wantErr: true},
		{name: "multipart without boundary", raw: "From: x@example\nContent-Type: multipart/mixed\n\nhi\n", wantErr: true},
		{name: "bad base64", raw: "From: x@example\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n!!!!\n", wantErr: true},
		{name: "unknown bounce format", raw: "From: MAILER-DAEMON@mx.example\nSubject: Returned mail: see transcript\n\nsomething went wrong\n", wantErr: true},
		{name: "no header", raw: "just text without a header\n", wantErr: true},
		{name: "human reply", raw: "From: bob@example.org\nSubject: Re: news\n\nThanks!\n", kind: NotBounce},
		{name: "vacation subject", raw: "From: bob@example.org\nSubject: Automatic reply: news\n\naway\n", kind: NotBounce},
		{name: "exim delay warning", raw: "From: Mail Delivery System <Mailer-Daemon@x.example>\nSubject: Warning: message 1abc delayed 24 hours\n\nThis message was created automatically by mail delivery software.\n\nA message that you sent has not yet been delivered to one or more of its\nrecipients after more than 24 hours on the queue on x.example.\n\nThe address to which the message has not yet been delivered is:\n\n  late@example.org\n    Delay reason: SMTP error from remote mail server after RCPT TO:<late@example.org>:\n    451 4.7.1 Greylisted, try again later\n\nNo action is required on your part.\n",
			kind: Soft, rcpts: []Rcpt{{Addr: "late@example.org", Status: "4.7.1", Action: "delayed", Diagnostic: "Delay reason: SMTP error from remote mail server after RCPT TO:<late@example.org>: 451 4.7.1 Greylisted, try again later", Kind: Soft}}},
		{name: "exim pipe target skipped", raw: "From: Mailer-Daemon@x.example\nSubject: Mail delivery failed\n\nThis message was created automatically by mail delivery software.\n\nThe following address(es) failed:\n\n  pipe to |/usr/bin/procmail\n    generated by local@x.example\n  b@example.org\n    550 5.1.1 no\n",
			kind: Hard, rcpts: []Rcpt{{Addr: "b@example.org", Status: "5.1.1", Action: "failed", Diagnostic: "550 5.1.1 no", Kind: Hard}}},
		{name: "qmail without addresses", raw: "From: MAILER-DAEMON@x.example\nSubject: failure notice\n\nHi. This is the qmail-send program at x.example.\nI'm afraid I wasn't able to deliver your message.\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := Parse([]byte(tt.raw))
			if tt.wantErr {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("got %+v, %v; want ErrMalformed", rep, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if rep.Kind != tt.kind {
				t.Errorf("kind: got %v, want %v", rep.Kind, tt.kind)
			}
			if !reflect.DeepEqual(rep.Recipients, tt.rcpts) {
				t.Errorf("recipients:\ngot  %+v\nwant %+v", rep.Recipients, tt.rcpts)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "bounces", "*.eml"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		rep, err := Parse(raw)
		if err != nil {
			return
		}
		for _, r := range rep.Recipients {
			if r.Addr == "" || r.Status == "" || r.Kind == NotBounce {
				t.Fatalf("incomplete recipient %+v", r)
			}
		}
	})
}
