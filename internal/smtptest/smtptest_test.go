package smtptest

import (
	"errors"
	"net/smtp"
	"net/textproto"
	"strings"
	"testing"
)

// TestServerRecords checks the server with the standard library client, so
// the helper is not only tested through the code it is meant to test.
func TestServerRecords(t *testing.T) {
	s := Start(t, Options{})
	s.RejectRcptTimes("no@example.org", 1, 550, "5.1.1", "no such user")
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("a@example.org"); err != nil {
		t.Fatal(err)
	}
	err = c.Rcpt("no@example.org")
	var te *textproto.Error
	if !errors.As(err, &te) || te.Code != 550 || te.Msg != "5.1.1 no such user" {
		t.Fatalf("got %v, want 550 5.1.1", err)
	}
	if err := c.Rcpt("yes@example.org"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("Subject: x\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// The rule was for one RCPT only.
	if err := c.Mail("a@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("no@example.org"); err != nil {
		t.Fatalf("second RCPT: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	msgs := s.Messages()
	if len(msgs) != 1 || msgs[0].From != "a@example.org" || strings.Join(msgs[0].To, ",") != "yes@example.org" || string(msgs[0].Data) != "Subject: x\r\n\r\nbody\r\n" {
		t.Fatalf("got %+v", msgs)
	}
	if s.Deliveries("YES@example.org") != 1 || s.Deliveries("no@example.org") != 0 {
		t.Error("Deliveries miscounts")
	}
	if s.Sessions() != 1 || s.MaxConcurrent() != 1 {
		t.Errorf("got %d sessions, %d concurrent; want 1, 1", s.Sessions(), s.MaxConcurrent())
	}
}

func TestStartWithoutConnecting(t *testing.T) {
	// Cleanup must not hang when no client ever connected.
	for range 20 {
		t.Run("", func(t *testing.T) { Start(t, Options{TLS: "tls"}) })
	}
}

// DiscardData keeps the envelope of each message and drops its data.
func TestServerDiscardData(t *testing.T) {
	s := Start(t, Options{DiscardData: true})
	if err := smtp.SendMail(s.Addr(), nil, "a@example.org", []string{"b@example.org", "c@example.org"}, []byte("Subject: x\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	msgs := s.Messages()
	if len(msgs) != 1 || msgs[0].From != "a@example.org" || strings.Join(msgs[0].To, ",") != "b@example.org,c@example.org" || msgs[0].Data != nil {
		t.Fatalf("got %+v, want the envelope without data", msgs)
	}
}
