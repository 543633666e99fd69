package smtptest

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"sync/atomic"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// check compares credentials in constant time and answers with
// smtp.ErrAuthFailed: any other error would reach the client as a
// temporary 454, which would hide a wrong password behind a retry.
func check(wantUser, wantPass, user, pass string) error {
	u := subtle.ConstantTimeCompare([]byte(wantUser), []byte(user))
	p := subtle.ConstantTimeCompare([]byte(wantPass), []byte(pass))
	if u&p != 1 {
		return smtp.ErrAuthFailed
	}
	return nil
}

// loginServer is the server side of the LOGIN mechanism
// (draft-murchison-sasl-login): ask for the user, then the password.
type loginServer struct {
	user, pass string
	done       func()
	step       int
	gotUser    string
}

func (s *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch s.step {
	case 0:
		s.step = 1
		if resp == nil {
			return []byte("Username:"), false, nil
		}
		s.gotUser = string(resp)
		s.step = 2
		return []byte("Password:"), false, nil
	case 1:
		s.gotUser = string(resp)
		s.step = 2
		return []byte("Password:"), false, nil
	case 2:
		s.step = 3
		if err := check(s.user, s.pass, s.gotUser, string(resp)); err != nil {
			return nil, false, err
		}
		s.done()
		return nil, true, nil
	}
	return nil, false, smtp.ErrAuthFailed
}

var challengeSeq atomic.Int64

// cramServer is the server side of CRAM-MD5 (RFC 2195).
type cramServer struct {
	user, pass string
	done       func()
	challenge  []byte
}

func (s *cramServer) Next(resp []byte) ([]byte, bool, error) {
	if s.challenge == nil {
		s.challenge = fmt.Appendf(nil, "<%d.smtptest@localhost>", challengeSeq.Add(1))
		return s.challenge, false, nil
	}
	user, digest, ok := bytes.Cut(resp, []byte(" "))
	if !ok {
		return nil, false, smtp.ErrAuthFailed
	}
	mac := hmac.New(md5.New, []byte(s.pass))
	mac.Write(s.challenge)
	want := hex.EncodeToString(mac.Sum(nil))
	if check(s.user, want, string(user), string(digest)) != nil {
		return nil, false, smtp.ErrAuthFailed
	}
	s.done()
	return nil, true, nil
}

// xoauth2Server is the server side of Google's XOAUTH2: one initial
// response "user=U\x01auth=Bearer T\x01\x01"; the token plays the password.
type xoauth2Server struct {
	user, pass string
	done       func()
}

func (s *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if resp == nil {
		return []byte{}, false, nil
	}
	var user, token string
	for _, f := range bytes.Split(resp, []byte{1}) {
		switch {
		case bytes.HasPrefix(f, []byte("user=")):
			user = string(f[len("user="):])
		case bytes.HasPrefix(f, []byte("auth=Bearer ")):
			token = string(f[len("auth=Bearer "):])
		}
	}
	if err := check(s.user, s.pass, user, token); err != nil {
		return nil, false, err
	}
	s.done()
	return nil, true, nil
}

// newAuthServer returns the sasl.Server for mech, or smtp's
// unknown-mechanism error.
func newAuthServer(mech, user, pass string, done func()) (sasl.Server, error) {
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, u, p string) error {
			if err := check(user, pass, u, p); err != nil {
				return err
			}
			done()
			return nil
		}), nil
	case sasl.Login:
		return &loginServer{user: user, pass: pass, done: done}, nil
	case "CRAM-MD5":
		return &cramServer{user: user, pass: pass, done: done}, nil
	case "XOAUTH2":
		return &xoauth2Server{user: user, pass: pass, done: done}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}
