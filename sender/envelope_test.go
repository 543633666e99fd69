package sender

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mailrun/mailrun/internal/smtptest"
)

// envelopes renders what the server received compactly: one line per
// envelope, "FROM [SMTPUTF8] -> RCPT,RCPT".
func envelopes(srv *smtptest.Server) string {
	var lines []string
	for _, e := range srv.Envelopes() {
		from := e.From
		if e.SMTPUTF8 {
			from += " SMTPUTF8"
		}
		lines = append(lines, from+" -> "+strings.Join(e.Rcpts, ","))
	}
	return strings.Join(lines, "\n")
}

// TestSendInternational sends international addresses over the wire in
// every transaction mode, SMTP and LMTP, to a relay that offers SMTPUTF8
// and to one that does not, and asserts on the envelope the server
// received. With SMTPUTF8 every address goes as it is and MAIL FROM
// carries the parameter (RFC 6531 section 3.4). Without it the IDN domain
// goes in its A-label form, and the recipient with a non-ASCII local part
// is rejected before anything is sent for it, while the others go on.
func TestSendInternational(t *testing.T) {
	const (
		local  = "ünï@example.org"
		idn    = "jose@exämple.example"
		aLabel = "jose@xn--exmple-cua.example"
	)
	reason := "RCPT TO: the relay does not offer SMTPUTF8 (RFC 6531), needed for the non-ASCII local part of <" + local + ">"
	tests := []struct {
		name     string
		noUTF8   bool
		to       []string
		want     string // statuses
		envelope string // what the server received
		rejected int    // index of the recipient rejected for its local part, -1 for none
	}{
		{
			name: "group with SMTPUTF8", to: []string{"a@example.org", local, idn, "b@example.org"},
			want:     "a=delivered ünï=delivered jose=delivered b=delivered",
			envelope: "s@example.org SMTPUTF8 -> a@example.org," + local + "," + idn + ",b@example.org",
			rejected: -1,
		},
		{
			name: "group without SMTPUTF8", noUTF8: true, to: []string{"a@example.org", local, idn, "b@example.org"},
			want:     "a=delivered ünï=rejected jose=delivered b=delivered",
			envelope: "s@example.org -> a@example.org," + aLabel + ",b@example.org",
			rejected: 1,
		},
		{
			name: "local part alone with SMTPUTF8", to: []string{local},
			want:     "ünï=delivered",
			envelope: "s@example.org SMTPUTF8 -> " + local,
			rejected: -1,
		},
		{
			name: "local part alone without SMTPUTF8", noUTF8: true, to: []string{local},
			want:     "ünï=rejected",
			rejected: 0,
		},
		{
			name: "domain alone without SMTPUTF8", noUTF8: true, to: []string{idn},
			want:     "jose=delivered",
			envelope: "s@example.org -> " + aLabel,
			rejected: -1,
		},
	}
	for _, lmtp := range []bool{false, true} {
		for _, mode := range []string{"chunking", "pipelining", "plain"} {
			for _, tt := range tests {
				name := fmt.Sprintf("lmtp=%v/%s/%s", lmtp, mode, tt.name)
				t.Run(name, func(t *testing.T) {
					opt := smtptest.Options{LMTP: lmtp, NoSMTPUTF8: tt.noUTF8}
					srv := smtptest.Start(t, opt)
					cfg := config(srv, opt)
					setMode(t, srv, &cfg, mode)
					cn := mustDial(t, mustClient(t, cfg))
					res, err := cn.Send(context.Background(), "s@example.org", tt.to, testMsg)
					if err != nil {
						t.Fatalf("Send: %v", err)
					}
					if got := statuses(res); got != tt.want {
						t.Errorf("got %s, want %s", got, tt.want)
					}
					for i, rr := range res.Rcpts {
						if rr.Addr != tt.to[i] {
							t.Errorf("result %d: got address %q, want the caller's %q", i, rr.Addr, tt.to[i])
						}
					}
					if tt.rejected >= 0 {
						rr := res.Rcpts[tt.rejected]
						e := asError(t, rr.Err)
						if !errors.Is(rr.Err, ErrNoSMTPUTF8) || e.Temporary || IsFatal(e) || e.Code != 0 || e.Error() != reason {
							t.Errorf("got %q (temporary %v, fatal %v, code %d), want %q wrapping ErrNoSMTPUTF8, permanent, without a reply",
								e.Error(), e.Temporary, IsFatal(e), e.Code, reason)
						}
					}
					if got := envelopes(srv); got != tt.envelope {
						t.Errorf("server received:\n%s\nwant:\n%s", got, tt.envelope)
					}
					// The connection stays in step.
					res, err = cn.Send(context.Background(), "s@example.org", []string{"next@example.org"}, testMsg)
					if err != nil || res.Rcpts[0].Status != Delivered {
						t.Errorf("next message: %s, %v", statuses(res), err)
					}
				})
			}
		}
	}
}

// TestSendInternationalSender covers the envelope sender: without
// SMTPUTF8 its IDN domain goes as A-labels, and a non-ASCII local part
// fails the whole message before anything is sent, with a permanent,
// fatal error (every message of the run has that sender). The recipients
// stay Deferred, as after a MAIL FROM the relay refused: nothing was sent
// for them, and a run with another sender or relay may send them.
func TestSendInternationalSender(t *testing.T) {
	tests := []struct {
		name, from string
		noUTF8     bool
		wantErr    string
		envelope   string
	}{
		{"domain with SMTPUTF8", "s@exämple.example", false, "", "s@exämple.example SMTPUTF8 -> a@example.org"},
		{"domain without SMTPUTF8", "s@exämple.example", true, "", "s@xn--exmple-cua.example -> a@example.org"},
		{"local part with SMTPUTF8", "sé@example.org", false, "", "sé@example.org SMTPUTF8 -> a@example.org"},
		{"local part without SMTPUTF8", "sé@example.org", true,
			"MAIL FROM: the relay does not offer SMTPUTF8 (RFC 6531), needed for the non-ASCII local part of <sé@example.org>", ""},
		{"refused domain without SMTPUTF8", "s@bü_cher.example", true,
			`MAIL FROM: domain of <s@bü_cher.example> has no A-label form: idna: disallowed rune U+005F`, ""},
	}
	for _, mode := range []string{"chunking", "pipelining", "plain"} {
		for _, tt := range tests {
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				opt := smtptest.Options{NoSMTPUTF8: tt.noUTF8}
				srv := smtptest.Start(t, opt)
				cfg := config(srv, opt)
				setMode(t, srv, &cfg, mode)
				cn := mustDial(t, mustClient(t, cfg))
				res, err := cn.Send(context.Background(), tt.from, []string{"a@example.org"}, testMsg)
				if tt.wantErr == "" {
					if err != nil || res.Rcpts[0].Status != Delivered {
						t.Fatalf("got %s, %v", statuses(res), err)
					}
				} else {
					e := asError(t, err)
					if e.Error() != tt.wantErr || e.Temporary || !IsFatal(err) {
						t.Errorf("got %q (temporary %v, fatal %v), want %q, permanent and fatal", e.Error(), e.Temporary, IsFatal(err), tt.wantErr)
					}
					if got := statuses(res); got != "a=deferred" {
						t.Errorf("got %s, want a=deferred", got)
					}
				}
				if got := envelopes(srv); got != tt.envelope {
					t.Errorf("server received:\n%s\nwant:\n%s", got, tt.envelope)
				}
			})
		}
	}
}

// TestSendRefusedDomain: a domain that idna refuses fails that recipient
// with idna's reason; the others go on.
func TestSendRefusedDomain(t *testing.T) {
	opt := smtptest.Options{NoSMTPUTF8: true}
	srv := smtptest.Start(t, opt)
	cn := mustDial(t, mustClient(t, config(srv, opt)))
	to := []string{"a@example.org", "bidi@a\u202eb.exämple", "hyphen@-bücher.example"}
	res, err := cn.Send(context.Background(), "s@example.org", to, testMsg)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := statuses(res), "a=delivered bidi=rejected hyphen=rejected"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	for i, want := range []string{
		"",
		"RCPT TO: domain of <bidi@a\u202eb.exämple> has no A-label form: idna: disallowed rune U+202E",
		`RCPT TO: domain of <hyphen@-bücher.example> has no A-label form: idna: invalid label "-bücher"`,
	} {
		if want == "" {
			continue
		}
		e := asError(t, res.Rcpts[i].Err)
		if e.Error() != want || e.Temporary || errors.Is(e, ErrNoSMTPUTF8) {
			t.Errorf("%s: got %q (temporary %v), want %q, permanent", to[i], e.Error(), e.Temporary, want)
		}
	}
	if got, want := envelopes(srv), "s@example.org -> a@example.org"; got != want {
		t.Errorf("server received %q, want %q", got, want)
	}
}

// TestPoolInternational: through a Pool, the recipient whose local part
// cannot go is rejected once, never retried, and costs the others nothing;
// a sender that cannot go stops the run with every recipient Deferred.
func TestPoolInternational(t *testing.T) {
	opt := smtptest.Options{NoSMTPUTF8: true}
	srv := smtptest.Start(t, opt)
	p := newPool(t, srv, opt, PoolConfig{Retries: 3, Backoff: time.Millisecond})
	res, err := p.Send(context.Background(), "s@example.org", []string{"a@example.org", "ünï@example.org", "jose@exämple.example"}, testMsg)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := statuses(res), "a=delivered ünï=rejected jose=delivered"; got != want || res.Attempts != 1 {
		t.Errorf("got %s in %d attempts, want %s in 1", got, res.Attempts, want)
	}
	res, err = p.Send(context.Background(), "sé@example.org", []string{"a@example.org"}, testMsg)
	if !errors.Is(err, ErrNoSMTPUTF8) || !IsFatal(err) || statuses(res) != "a=deferred" || res.Attempts != 1 {
		t.Errorf("got %s in %d attempts, %v; want a=deferred in 1, fatal ErrNoSMTPUTF8", statuses(res), res.Attempts, err)
	}
	if got, want := envelopes(srv), "s@example.org -> a@example.org,jose@xn--exmple-cua.example"; got != want {
		t.Errorf("server received %q, want %q", got, want)
	}
}

func TestWireAddr(t *testing.T) {
	tests := []struct {
		addr   string
		utf8   bool
		want   string
		noUTF8 bool // the error wraps ErrNoSMTPUTF8
		idna   bool // the error is idna's
	}{
		{addr: "a@example.org", want: "a@example.org"},
		{addr: "a@xn--exmple-cua.example", want: "a@xn--exmple-cua.example"},
		{addr: "jose@exämple.example", want: "jose@xn--exmple-cua.example"},
		// UTS 46 mapping: case and the ideographic full stop.
		{addr: "Jose@EXÄMPLE.Example", want: "Jose@xn--exmple-cua.example"},
		{addr: "a@bücher。example", want: "a@xn--bcher-kva.example"},
		// The domain follows the last "@".
		{addr: `"a@b"@bücher.example`, want: `"a@b"@xn--bcher-kva.example`},
		{addr: "ünï@example.org", noUTF8: true},
		{addr: "ünï@exämple.example", noUTF8: true},
		{addr: "pöstmaster", noUTF8: true},
		{addr: "a@bü_cher.example", idna: true},
		{addr: "a@-bücher.example", idna: true},
		{addr: "ünï@exämple.example", utf8: true, want: "ünï@exämple.example"},
		{addr: "a@bü_cher.example", utf8: true, want: "a@bü_cher.example"},
	}
	for _, tt := range tests {
		cn := &Conn{utf8: tt.utf8}
		got, err := cn.wireAddr(tt.addr)
		switch {
		case tt.noUTF8 || tt.idna:
			if err == nil || errors.Is(err, ErrNoSMTPUTF8) != tt.noUTF8 || strings.Contains(err.Error(), "idna:") != tt.idna {
				t.Errorf("%q utf8=%v: got %q, %v; want an error (SMTPUTF8 %v, idna %v)", tt.addr, tt.utf8, got, err, tt.noUTF8, tt.idna)
			}
		case err != nil || got != tt.want:
			t.Errorf("%q utf8=%v: got %q, %v; want %q", tt.addr, tt.utf8, got, err, tt.want)
		}
	}
}

// TestEnvelopeASCIIAllocs pins the hot path: an all-ASCII envelope costs
// the one slice of indexes it returns, and no copy of the addresses,
// with or without SMTPUTF8.
func TestEnvelopeASCIIAllocs(t *testing.T) {
	to := []string{"a@example.org", "b@example.org", "c@example.org"}
	res := &Result{Rcpts: make([]RcptResult, len(to))}
	for _, utf8 := range []bool{false, true} {
		cn := &Conn{utf8: utf8}
		var wire []string
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := cn.wireFrom("s@example.org"); err != nil {
				t.Fatal(err)
			}
			_, wire = cn.envelope(res, to)
		})
		if allocs > 1 {
			t.Errorf("utf8=%v: got %v allocations, want at most 1", utf8, allocs)
		}
		if &wire[0] != &to[0] {
			t.Errorf("utf8=%v: the addresses were copied", utf8)
		}
	}
}
