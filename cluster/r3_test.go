package cluster

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mailrun/mailrun/internal/natstest"
)

// TestReplicatedClaims: against a cluster of three, every bucket is kept
// three times, a claim is still taken once (a replicated stream reports a
// lost compare-and-set with another error code), and the claims survive
// the loss of one server.
func TestReplicatedClaims(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of three servers")
	}
	url, servers := natstest.Start(t, t.TempDir(), false)
	var a, b *Conn
	deadline := time.Now().Add(60 * time.Second)
	for a == nil || b == nil {
		// The cluster elects its JetStream leader first: until then
		// opening the buckets fails.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var err error
		if a == nil {
			a, err = Open(ctx, url, Options{Name: "a", AckWait: 2 * time.Second})
		}
		if err == nil && b == nil {
			b, err = Open(ctx, url, Options{Name: "b"})
		}
		cancel()
		if err != nil {
			if time.Now().After(deadline) {
				t.Fatalf("cluster not ready within 60 s: %v", err)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	if a.Replicas() != 3 {
		t.Fatalf("replicas %d, want 3", a.Replicas())
	}
	ctx := context.Background()
	ck := CampaignKey("r3")
	rev, err := a.Claim(ctx, ck, "ann@example.org", Claim{Worker: "a", Token: "1", Email: "ann@example.org"}, Over{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Claim(ctx, ck, "ann@example.org", Claim{Worker: "b", Token: "2"}, Over{}); !errors.Is(err, ErrTaken) {
		t.Fatalf("second claim on R3: %v, want ErrTaken", err)
	}
	if err := a.Settle(ctx, ck, "ann@example.org", rev, Claim{State: Deferred, Token: "1"}); err != nil {
		t.Fatal(err)
	}
	won := 0
	for i, c := range []*Conn{a, b} {
		if _, err := c.Claim(ctx, ck, "ann@example.org", Claim{Token: fmt.Sprint(i + 10)}, Over{}); err == nil {
			won++
		} else if !errors.Is(err, ErrTaken) {
			t.Fatal(err)
		}
	}
	if won != 1 {
		t.Fatalf("%d took the deferred recipient on R3, want 1", won)
	}

	// One server of three goes: the claims are still there and new ones
	// are taken.
	servers[2].Shutdown()
	deadline = time.Now().Add(60 * time.Second)
	for {
		all, err := a.Claims(ctx, ck)
		if err == nil && len(all) == 1 && all[0].State == Sending {
			if _, err = a.Claim(ctx, ck, "bob@example.org", Claim{Token: "3"}, Over{}); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after losing one server of three: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
