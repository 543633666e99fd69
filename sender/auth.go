package sender

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/textproto"
	"slices"
	"strings"
)

// mechanism is the client side of one SASL mechanism (RFC 4422).
type mechanism interface {
	// start returns the mechanism's name and its initial response, nil
	// for none (RFC 4954 section 4).
	start() (name string, ir []byte)
	// next answers a server challenge.
	next(challenge []byte) ([]byte, error)
}

// plainAuth is PLAIN (RFC 4616): the credentials in the initial response,
// one round trip.
type plainAuth struct{ user, pass string }

func (a plainAuth) start() (string, []byte) {
	return "PLAIN", []byte("\x00" + a.user + "\x00" + a.pass)
}

func (plainAuth) next([]byte) ([]byte, error) {
	return nil, errors.New("unexpected challenge after the credentials")
}

// loginAuth is LOGIN (draft-murchison-sasl-login): no initial response,
// as the draft has it; the user name answers the first challenge, the
// password the second.
type loginAuth struct {
	user, pass string
	step       int
}

func (*loginAuth) start() (string, []byte) { return "LOGIN", nil }

func (a *loginAuth) next([]byte) ([]byte, error) {
	a.step++
	switch a.step {
	case 1:
		return []byte(a.user), nil
	case 2:
		return []byte(a.pass), nil
	}
	return nil, errors.New("unexpected challenge after the password")
}

// cramAuth is CRAM-MD5 (RFC 2195): the password never crosses the wire,
// only an HMAC of the server's challenge keyed with it.
type cramAuth struct{ user, pass string }

func (cramAuth) start() (string, []byte) { return "CRAM-MD5", nil }

func (a cramAuth) next(challenge []byte) ([]byte, error) {
	mac := hmac.New(md5.New, []byte(a.pass))
	mac.Write(challenge)
	return []byte(a.user + " " + hex.EncodeToString(mac.Sum(nil))), nil
}

// xoauth2Auth is Google's and Microsoft's XOAUTH2: the user and the
// bearer token (the Password) in the initial response. A refused token
// gets a 334 with an error in JSON, which the client acknowledges with an
// empty line before the server's final reply.
type xoauth2Auth struct{ user, token string }

func (a xoauth2Auth) start() (string, []byte) {
	return "XOAUTH2", []byte("user=" + a.user + "\x01auth=Bearer " + a.token + "\x01\x01")
}

func (xoauth2Auth) next([]byte) ([]byte, error) { return []byte{}, nil }

// autoOrder is the preference of auth auto among what the server offers.
// Over TLS, PLAIN costs one round trip and TLS protects it; CRAM-MD5 and
// LOGIN come next. Without TLS (loopback only, New sees to that)
// CRAM-MD5 goes first, as the one that keeps the password off the wire.
// XOAUTH2 is never guessed: its secret is a token, not a password.
var (
	autoOrderTLS   = []string{"PLAIN", "CRAM-MD5", "LOGIN"}
	autoOrderPlain = []string{"CRAM-MD5", "PLAIN", "LOGIN"}
)

// pickMechanism chooses the mechanism for Config.Auth among those the
// server offers (the EHLO AUTH keyword). The error is a fatal *Error for
// "AUTH" when the server offers none that fits: a configured mechanism
// that is not offered is not tried.
func (c *Client) pickMechanism(offered []string, encrypted bool) (mechanism, *Error) {
	want := []string{strings.ToUpper(c.cfg.Auth)}
	if c.cfg.Auth == "auto" {
		want = autoOrderPlain
		if encrypted {
			want = autoOrderTLS
		}
	}
	for _, name := range want {
		if !slices.Contains(offered, name) {
			continue
		}
		u, p := c.cfg.Username, c.cfg.Password
		switch name {
		case "PLAIN":
			return plainAuth{u, p}, nil
		case "LOGIN":
			return &loginAuth{user: u, pass: p}, nil
		case "CRAM-MD5":
			return cramAuth{u, p}, nil
		case "XOAUTH2":
			return xoauth2Auth{u, p}, nil
		}
	}
	if len(offered) == 0 {
		return nil, &Error{Command: "AUTH", Err: ErrNoAuth, fatal: true}
	}
	text := fmt.Sprintf("server offers AUTH %s, not %s", strings.Join(offered, " "), strings.Join(want, " or "))
	return nil, &Error{Command: "AUTH", Text: text, fatal: true}
}

// ErrNoAuth is matched (errors.Is) by the error of a dial whose Config has
// a login for a relay that offers no AUTH at all: a development server, or
// a relay that lets this host send without one.
var ErrNoAuth = errors.New("the relay offers no AUTH")

// maxAuthSteps bounds the challenges of one AUTH exchange; the longest
// mechanism here needs two.
const maxAuthSteps = 8

// authenticate runs AUTH (RFC 4954) with the mechanism pickMechanism
// chooses. It succeeds on 235; a 5xx (535 for bad credentials) is fatal,
// a 4xx temporary. The trace shows the AUTH verb and mechanism, never a
// payload: each client line and challenge is traced as redactedAuth.
func (cn *Conn) authenticate(ext map[string]string) *Error {
	m, e := cn.c.pickMechanism(strings.Fields(strings.ToUpper(ext["AUTH"])), cn.tlsConn != nil)
	if e != nil {
		return e
	}
	name, ir := m.start()
	line := "AUTH " + name
	if ir != nil {
		cn.tr.client(line + " " + redactedAuth)
		line += " " + encodeResponse(ir)
	} else {
		cn.tr.client(line)
	}
	payload := []byte(line)
	for range maxAuthSteps {
		code, text, err := cn.authStep(payload)
		switch {
		case err != nil:
			return dialError("AUTH", err)
		case code/100 == 2: // 235
			return nil
		case code != 334:
			return dialError("AUTH", &textproto.Error{Code: code, Msg: text})
		}
		challenge, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			return &Error{Command: "AUTH", Text: "malformed challenge", Err: err, fatal: true}
		}
		resp, err := m.next(challenge)
		if err != nil {
			return &Error{Command: "AUTH", Text: name, Err: err, fatal: true}
		}
		cn.tr.client(redactedAuth)
		payload = []byte(base64.StdEncoding.EncodeToString(resp))
	}
	return &Error{Command: "AUTH", Text: "too many challenges", fatal: true}
}

// authStep writes one line of the exchange, untraced (the caller traced
// its redacted form), and reads the reply, tracing a 334 challenge as
// redactedAuth.
func (cn *Conn) authStep(line []byte) (code int, text string, err error) {
	cn.deadline(cn.c.cfg.Timeout)
	_, _ = cn.w.Write(line)
	_, _ = cn.w.WriteString("\r\n")
	if err := cn.w.Flush(); err != nil {
		return 0, "", err
	}
	code, text, err = cn.r.ReadResponse(0)
	switch {
	case code == 334:
		cn.tr.server(code, redactedAuth)
	case code != 0:
		cn.tr.server(code, text)
	}
	return code, text, err
}

// encodeResponse is an initial response on the AUTH line: base64, or "="
// for an empty one (RFC 4954 section 4).
func encodeResponse(ir []byte) string {
	if len(ir) == 0 {
		return "="
	}
	return base64.StdEncoding.EncodeToString(ir)
}
