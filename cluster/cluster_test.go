package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailrun/mailrun/internal/servertest"
)

func startHub(t *testing.T, dir string) *Hub {
	t.Helper()
	h, err := StartHub(HubConfig{Listen: "127.0.0.1:0", StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func open(t *testing.T, url string) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Open(ctx, url, Options{Name: t.Name(), AckWait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestHubRefusesExposedListen(t *testing.T) {
	_, err := StartHub(HubConfig{Listen: "0.0.0.0:0", StoreDir: t.TempDir()})
	if !errors.Is(err, ErrExposed) {
		t.Fatalf("got %v, want ErrExposed", err)
	}
}

// TestClaimOnce: of two workers claiming one recipient, one gets it; an
// outcome other than deferred keeps it; a deferred one goes to exactly one
// of two workers claiming it again.
func TestClaimOnce(t *testing.T) {
	h := startHub(t, t.TempDir())
	a, b := open(t, h.URL()), open(t, h.URL())
	ctx := context.Background()
	ck := CampaignKey("spring news")
	rev, err := a.Claim(ctx, ck, "ann@example.org", Claim{Worker: "a", Token: "t1", Email: "ann@example.org"}, Over{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Claim(ctx, ck, "ann@example.org", Claim{Worker: "b", Token: "t2"}, Over{}); !errors.Is(err, ErrTaken) {
		t.Fatalf("second claim: got %v, want ErrTaken", err)
	}
	// A create whose reply was lost: the same token finds its own claim.
	if r2, err := a.Claim(ctx, ck, "ann@example.org", Claim{Worker: "a", Token: "t1"}, Over{}); err != nil || r2 != rev {
		t.Fatalf("own claim again: rev %d, %v; want %d", r2, err, rev)
	}
	if err := a.Settle(ctx, ck, "ann@example.org", rev, Claim{State: Deferred, Token: "t1", Email: "ann@example.org"}); err != nil {
		t.Fatal(err)
	}
	won := 0
	for i, c := range []*Conn{a, b} {
		_, err := c.Claim(ctx, ck, "ann@example.org", Claim{Worker: "w", Token: string(rune('x' + i))}, Over{})
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrTaken):
			t.Fatal(err)
		}
	}
	if won != 1 {
		t.Fatalf("%d workers took the deferred recipient, want 1", won)
	}
	all, err := a.Claims(ctx, ck)
	if err != nil || len(all) != 1 || all[0].State != Sending {
		t.Fatalf("claims: %+v, %v", all, err)
	}
}

// TestQueueOnce: a rerun of the coordinator does not queue a batch again,
// and a batch a worker never finishes goes to another after the ack wait.
func TestQueueOnce(t *testing.T) {
	h := startHub(t, t.TempDir())
	c := open(t, h.URL())
	ctx := context.Background()
	ck := CampaignKey("q")
	for range 2 {
		for n := range 3 {
			if _, err := c.Queue(ctx, ck, 1, n, []byte{byte('0' + n)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var got []string
	var dropped *Batch
	for range 3 {
		b, err := c.Next(ctx, 5*time.Second)
		if err != nil || b == nil {
			t.Fatalf("next: %v, %v", b, err)
		}
		got = append(got, string(b.Data))
		if dropped == nil {
			dropped = b // never acknowledged: its worker "died"
			continue
		}
		if err := b.Done(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if b, err := c.Next(ctx, 500*time.Millisecond); err != nil || b != nil {
		t.Fatalf("a fourth batch: %v, %v", b, err)
	}
	again, err := c.Next(ctx, 10*time.Second)
	if err != nil || again == nil || string(again.Data) != string(dropped.Data) || again.Delivered != 2 {
		t.Fatalf("redelivery: %+v, %v", again, err)
	}
	if err := again.Done(ctx); err != nil {
		t.Fatal(err)
	}
	if done, all, err := c.BatchesDone(ctx, ck, 1); err != nil || done != 3 || all != 3 {
		t.Fatalf("batches done %d of %d, %v", done, all, err)
	}
	if len(got) != 3 {
		t.Fatalf("got %q", got)
	}
}

func TestFilesRoundTrip(t *testing.T) {
	h := startHub(t, t.TempDir())
	c := open(t, h.URL())
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "invoices"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"campaign.yaml": "name: x\n", "invoices/a.pdf": "%PDF-1.4 a"}
	var names []string
	for n, body := range files {
		names = append(names, n)
		if err := os.WriteFile(filepath.Join(src, filepath.FromSlash(n)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	key, err := FilesKey(src, names)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.PutFiles(ctx, key, src, names); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "w")
	if err := c.GetFiles(ctx, key, dst); err != nil {
		t.Fatal(err)
	}
	for n, body := range files {
		got, err := os.ReadFile(filepath.Join(dst, filepath.FromSlash(n)))
		if err != nil || string(got) != body {
			t.Errorf("%s: %q, %v", n, got, err)
		}
	}
	if err := c.GetFiles(ctx, "nope", dst); err == nil {
		t.Error("files nobody published: no error")
	}
}

func TestWorkersJoinAndLeave(t *testing.T) {
	h := startHub(t, t.TempDir())
	c := open(t, h.URL())
	ctx, cancel := context.WithCancel(context.Background())
	if err := c.Join(ctx, Worker{Name: "w1"}); err != nil {
		t.Fatal(err)
	}
	ws, err := c.Workers(context.Background())
	if err != nil || len(ws) != 1 || ws[0].Name != "w1" {
		t.Fatalf("workers: %+v, %v", ws, err)
	}
	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ws, _ := c.Workers(context.Background()); len(ws) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("a worker that left is still listed")
}

// TestHubTLSPassword: a hub beyond loopback starts with TLS and a
// password; a client without the password is refused, one with it and the
// hub's CA (from the environment) gets in.
func TestHubTLSPassword(t *testing.T) {
	certPEM, keyPEM := servertest.SelfSigned(t, "127.0.0.1")
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := StartHub(HubConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), User: DefaultUser, Password: "hub-Secret-42",
		TLS: &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	if !strings.HasPrefix(h.URL(), "tls://") {
		t.Fatalf("url %s", h.URL())
	}
	t.Setenv(CAEnv, ca)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if c, err := Open(ctx, h.URL(), Options{Name: "nopass"}); err == nil {
		c.Close()
		t.Fatal("a client without the password got in")
	}
	t.Setenv(PasswordEnv, "hub-Secret-42")
	c, err := Open(ctx, h.URL(), Options{Name: "pass"})
	if err != nil {
		t.Fatalf("with the password and the CA: %v", err)
	}
	c.Close()
}

// TestClaimOver: a failed outcome is taken over only by a send that asked
// for it (Over.States) and saw it when it began (Over.UpTo); a skipped one
// (nothing sent) by anyone.
func TestClaimOver(t *testing.T) {
	h := startHub(t, t.TempDir())
	c := open(t, h.URL())
	ctx := context.Background()
	ck := CampaignKey("over")
	settle := func(addr, state string) uint64 {
		rev, err := c.Claim(ctx, ck, addr, Claim{Token: "t"}, Over{})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Settle(ctx, ck, addr, rev, Claim{State: state, Token: "t"}); err != nil {
			t.Fatal(err)
		}
		all, err := c.Claims(ctx, ck)
		if err != nil {
			t.Fatal(err)
		}
		for _, ce := range all {
			if ce.Key == ClaimKey(ck, addr) {
				return ce.Rev
			}
		}
		t.Fatalf("%s: no claim", addr)
		return 0
	}
	rev := settle("f@example.org", Failed)
	for _, tc := range []struct {
		over Over
		ok   bool
	}{
		{Over{}, false},
		{Over{States: []string{Failed}, UpTo: rev - 1}, false}, // an outcome of this very send
		{Over{States: []string{Unknown}, UpTo: rev}, false},
		{Over{States: []string{Failed}, UpTo: rev}, true},
	} {
		_, err := c.Claim(ctx, ck, "f@example.org", Claim{Token: "n"}, tc.over)
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrTaken) {
			t.Errorf("over %+v: got %v, want taken=%v", tc.over, err, tc.ok)
		}
	}
	settle("s@example.org", Skipped)
	if _, err := c.Claim(ctx, ck, "s@example.org", Claim{Token: "n"}, Over{}); err != nil {
		t.Errorf("skipped: %v, want it taken", err)
	}
}

// TestGiveUpLosesToOutcome: the coordinator gives up a claim whose worker
// recorded its outcome in between: the outcome stays, and GiveUp returns
// it, so the coordinator journals the truth.
func TestGiveUpLosesToOutcome(t *testing.T) {
	h := startHub(t, t.TempDir())
	c := open(t, h.URL())
	ctx := context.Background()
	ck := CampaignKey("giveup")
	rev, err := c.Claim(ctx, ck, "a@example.org", Claim{Token: "t", Email: "a@example.org"}, Over{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Settle(ctx, ck, "a@example.org", rev, Claim{State: Sent, Token: "t", Email: "a@example.org"}); err != nil {
		t.Fatal(err)
	}
	ce, err := c.GiveUp(ctx, ClaimKey(ck, "a@example.org"), rev, Claim{Token: "t", Email: "a@example.org"})
	if err != nil || ce.State != Sent {
		t.Fatalf("GiveUp after the outcome: %+v, %v; want the sent outcome", ce, err)
	}
	// A claim still sending is given up.
	rev, err = c.Claim(ctx, ck, "b@example.org", Claim{Token: "t", Email: "b@example.org"}, Over{})
	if err != nil {
		t.Fatal(err)
	}
	ce, err = c.GiveUp(ctx, ClaimKey(ck, "b@example.org"), rev, Claim{Token: "t", Email: "b@example.org"})
	if err != nil || ce.State != Unknown || ce.Rev <= rev {
		t.Fatalf("GiveUp of a claim: %+v, %v; want unknown at a newer revision", ce, err)
	}
	// The worker's late outcome still replaces the unknown.
	if err := c.Settle(ctx, ck, "b@example.org", rev, Claim{State: Sent, Token: "t", Email: "b@example.org"}); err != nil {
		t.Fatal(err)
	}
	all, err := c.Claims(ctx, ck)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range all {
		if e.State != Sent {
			t.Errorf("%s: %s, want sent", e.Email, e.State)
		}
	}
}

func TestOpenRefusesOtherURLs(t *testing.T) {
	for _, u := range []string{"bogus://x", "127.0.0.1:4222", "nats://127.0.0.1:4222,http://x"} {
		if _, err := Open(context.Background(), u, Options{}); err == nil || !strings.Contains(err.Error(), "want nats://") {
			t.Errorf("Open(%q): %v, want the URL refused", u, err)
		}
	}
}
