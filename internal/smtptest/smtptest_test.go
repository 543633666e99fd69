package smtptest

import (
	"errors"
	"io"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"testing"
	"time"
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

// FailCommand refuses the greeting (and closes) or EHLO (and goes on),
// and WaitClosed sees the client's close.
func TestFailGreetingAndEHLO(t *testing.T) {
	s := Start(t, Options{})
	s.FailCommand("GREETING", 1, 554, "5.7.1", "no service for you")
	s.FailCommand("EHLO", 1, 550, "5.7.1", "go away")

	tc, err := textproto.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = tc.ReadResponse(220)
	var te *textproto.Error
	if !errors.As(err, &te) || te.Code != 554 || te.Msg != "5.7.1 no service for you" {
		t.Fatalf("greeting: got %v, want 554 5.7.1", err)
	}
	_ = tc.Close()

	tc, err = textproto.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tc.ReadResponse(220); err != nil {
		t.Fatalf("second greeting: %v", err)
	}
	for i, want := range []int{550, 250} {
		id, err := tc.Cmd("EHLO client.test")
		if err != nil {
			t.Fatal(err)
		}
		tc.StartResponse(id)
		code, _, _ := tc.ReadResponse(0)
		tc.EndResponse(id)
		if code != want {
			t.Errorf("EHLO %d: got %d, want %d", i, code, want)
		}
	}
	if s.WaitClosed(50 * time.Millisecond) {
		t.Error("WaitClosed reported closed while the client holds a connection")
	}
	_ = tc.Close()
	if !s.WaitClosed(10 * time.Second) {
		t.Error("WaitClosed did not see the client close")
	}
	if got := s.Sessions(); got != 2 {
		t.Errorf("got %d sessions, want 2", got)
	}
}

// IPv6 listens on ::1; the test skips where the machine has none.
func TestServerIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	_ = ln.Close()
	s := Start(t, Options{IPv6: true})
	if s.Host() != "::1" || !strings.HasPrefix(s.Addr(), "[::1]:") {
		t.Fatalf("got host %q, addr %q", s.Host(), s.Addr())
	}
	if err := smtp.SendMail(s.Addr(), nil, "a@example.org", []string{"b@example.org"}, []byte("Subject: x\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	if s.Deliveries("b@example.org") != 1 {
		t.Error("message not delivered over IPv6")
	}
}

// Envelopes records MAIL FROM and every RCPT TO byte for byte, refused
// ones included, with the SMTPUTF8 parameter the standard library client
// adds when, and only when, the server offers it. Without SMTPUTF8 the
// server still takes raw UTF-8, which Envelopes shows as it came.
func TestServerEnvelopes(t *testing.T) {
	for _, tt := range []struct {
		name string
		opt  Options
		utf8 bool
	}{
		{"offered", Options{}, true},
		{"not offered", Options{NoSMTPUTF8: true}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := Start(t, tt.opt)
			s.RejectRcpt("no@example.org", 550, "5.1.1", "no such user")
			c, err := smtp.Dial(s.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Hello("client.test"); err != nil {
				t.Fatal(err)
			}
			if ok, _ := c.Extension("SMTPUTF8"); ok != tt.utf8 {
				t.Fatalf("got SMTPUTF8 offered %v, want %v", ok, tt.utf8)
			}
			if err := c.Mail("ünï@exämple.example"); err != nil {
				t.Fatal(err)
			}
			if err := c.Rcpt("no@example.org"); err == nil {
				t.Fatal("RCPT TO no@example.org was accepted")
			}
			if err := c.Rcpt("Jösé@Exämple.example"); err != nil {
				t.Fatal(err)
			}
			if err := c.Reset(); err != nil {
				t.Fatal(err)
			}
			if err := c.Quit(); err != nil {
				t.Fatal(err)
			}
			want := Envelope{From: "ünï@exämple.example", SMTPUTF8: tt.utf8, Body: "8BITMIME", Rcpts: []string{"no@example.org", "Jösé@Exämple.example"}}
			envs := s.Envelopes()
			if len(envs) != 1 || envs[0].From != want.From || envs[0].SMTPUTF8 != want.SMTPUTF8 || envs[0].Body != want.Body || strings.Join(envs[0].Rcpts, ",") != strings.Join(want.Rcpts, ",") {
				t.Errorf("got %+v, want [%+v]", envs, want)
			}
			if len(s.Messages()) != 0 {
				t.Errorf("got %d messages, want none", len(s.Messages()))
			}
		})
	}
}

// rawSession dials s, reads the greeting, says EHLO, writes cmds in one
// write (pipelined), and returns every reply line until the server
// closes or 5 seconds pass, with the EHLO reply.
func rawSession(t *testing.T, s *Server, cmds string) (ehlo string, replies []string) {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	tc := textproto.NewConn(c)
	if _, _, err := tc.ReadResponse(220); err != nil {
		t.Fatal(err)
	}
	if err := tc.PrintfLine("EHLO client.test"); err != nil {
		t.Fatal(err)
	}
	_, ehlo, err = tc.ReadResponse(250)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, cmds); err != nil {
		t.Fatal(err)
	}
	for range 100 { // bounded: a test sends a few commands
		line, err := tc.ReadLine()
		if err != nil {
			break
		}
		replies = append(replies, line)
	}
	return ehlo, replies
}

// ErrorLimit answers the command after the limit-th refusal with 421 (or
// nothing, ErrorLimitSilent) and closes, and runs none of the commands
// the client had pipelined behind it: the chunk is not taken.
func TestServerErrorLimit(t *testing.T) {
	group := "MAIL FROM:<s@example.org>\r\nRCPT TO:<no1@example.org>\r\nRCPT TO:<no2@example.org>\r\n" +
		"RCPT TO:<yes@example.org>\r\nBDAT 19 LAST\r\nSubject: x\r\n\r\nbody\r\n"
	for _, tt := range []struct {
		name   string
		silent bool
		want   string
	}{
		{"421", false, "250 2.0.0 Roger, accepting mail from <s@example.org>|550 5.1.1 no such user|550 5.1.1 no such user|421 4.7.0 localhost Error: too many errors"},
		{"silent", true, "250 2.0.0 Roger, accepting mail from <s@example.org>|550 5.1.1 no such user|550 5.1.1 no such user"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := Start(t, Options{ErrorLimit: 2, ErrorLimitSilent: tt.silent})
			s.RejectRcpt("no1@example.org", 550, "5.1.1", "no such user")
			s.RejectRcpt("no2@example.org", 550, "5.1.1", "no such user")
			_, replies := rawSession(t, s, group)
			if got := strings.Join(replies, "|"); got != tt.want {
				t.Errorf("got replies %q, want %q", got, tt.want)
			}
			if n := len(s.Messages()); n != 0 {
				t.Errorf("got %d messages, want none after the limit", n)
			}
			envs := s.Envelopes()
			if len(envs) != 1 || strings.Join(envs[0].Rcpts, ",") != "no1@example.org,no2@example.org" {
				t.Errorf("got envelopes %+v, want the RCPTs before the limit only", envs)
			}
			if !s.WaitClosed(5 * time.Second) {
				t.Error("the connection is still open")
			}
		})
	}
}

// MaxMessageBytes is advertised as SIZE and enforced on MAIL FROM.
func TestServerMaxMessageBytes(t *testing.T) {
	s := Start(t, Options{MaxMessageBytes: 100})
	ehlo, replies := rawSession(t, s, "MAIL FROM:<s@example.org> SIZE=101\r\nQUIT\r\n")
	if !strings.Contains(ehlo, "\nSIZE 100") {
		t.Errorf("EHLO reply %q lacks SIZE 100", ehlo)
	}
	if len(replies) == 0 || !strings.HasPrefix(replies[0], "552 5.3.4 ") {
		t.Errorf("got %q, want 552 5.3.4 to MAIL FROM with SIZE=101", replies)
	}
}
