package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The states of a claim. Sending is the claim itself; the others are
// outcomes and replace it.
const (
	Sending  = "sending"
	Sent     = "sent"
	Failed   = "failed"
	Deferred = "deferred"
	Unknown  = "unknown"
	// Skipped: the worker could not render the recipient's message.
	Skipped = "skipped"
)

// Claim is the value of one recipient's key: who holds it and, once
// settled, what happened.
type Claim struct {
	State  string `json:"state"`
	Worker string `json:"worker,omitempty"`
	// Token tells one claim from another, so a worker whose create timed
	// out can recognise its own claim when it reads the key back.
	Token     string    `json:"token,omitempty"`
	Row       int       `json:"row"`
	Email     string    `json:"email"`
	MessageID string    `json:"message_id,omitempty"`
	Attempts  int       `json:"attempts,omitempty"`
	Code      int       `json:"code,omitempty"`
	Enhanced  string    `json:"enhanced,omitempty"`
	Text      string    `json:"text,omitempty"`
	Error     string    `json:"error,omitempty"`
	Time      time.Time `json:"time"`
}

// Settled reports whether the claim holds an outcome.
func (c Claim) Settled() bool { return c.State != Sending && c.State != "" }

// ClaimKey is the key of a recipient of a campaign: the address key is
// hashed because key-value keys allow only a few ASCII characters.
func ClaimKey(campaign, addrKey string) string {
	h := sha256.Sum256([]byte(addrKey))
	return campaign + "." + hex.EncodeToString(h[:20])
}

// Over says which earlier outcomes a claim may take over, beside
// deferred and skipped (nothing reached the relay for those): a send with
// --retry-failed takes over failed, one with --resend-unknown unknown,
// but only outcomes at revision UpTo or below, the last one that send saw
// when it began, so that an outcome of the send itself is never sent
// again. A revision, not a time: the machines' clocks need not agree.
type Over struct {
	States []string `json:"states,omitempty"`
	UpTo   uint64   `json:"up_to,omitempty"`
}

// Claim takes the recipient for c.Worker with a create-only write. It
// returns the revision to settle with, or ErrTaken (wrapped, with the
// current holder) when a claim or an outcome holds the key that over does
// not let it take; an outcome it may take is taken by compare-and-set on
// its revision, so only one worker gets it.
func (cn *Conn) Claim(ctx context.Context, campaign, addrKey string, c Claim, over Over) (uint64, error) {
	key := ClaimKey(campaign, addrKey)
	c.State = Sending
	data, err := json.Marshal(c)
	if err != nil {
		return 0, err
	}
	rev, err := cn.claims.Create(ctx, key, data)
	if err == nil {
		return rev, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("claim %s: %w", c.Email, err)
	}
	cur, curRev, err := cn.get(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("claim %s: %w", c.Email, err)
	}
	switch {
	case cur.State == Sending && cur.Token == c.Token:
		return curRev, nil // our own create, whose reply was lost
	case cur.State != Deferred && cur.State != Skipped &&
		(!slices.Contains(over.States, cur.State) || curRev > over.UpTo):
		return 0, fmt.Errorf("%s: %w (%s by %s)", c.Email, ErrTaken, cur.State, cur.Worker)
	}
	rev, err = cn.claims.Update(ctx, key, data, curRev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, fmt.Errorf("%s: %w (deferred, taken by another worker)", c.Email, ErrTaken)
	}
	if err != nil {
		return 0, fmt.Errorf("claim %s: %w", c.Email, err)
	}
	return rev, nil
}

// Settle replaces the claim at rev with its outcome. When the coordinator
// marked the claim unknown meanwhile (it gave the worker up for dead), the
// outcome, which is the truth, replaces that too.
func (cn *Conn) Settle(ctx context.Context, campaign, addrKey string, rev uint64, c Claim) error {
	key := ClaimKey(campaign, addrKey)
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	_, err = cn.claims.Update(ctx, key, data, rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		cur, curRev, gerr := cn.get(ctx, key)
		switch {
		case gerr == nil && cur.Token == c.Token && cur.State == c.State:
			err = nil // our own write, whose reply was lost
		case gerr == nil && cur.State == Unknown && cur.Token == c.Token:
			_, err = cn.claims.Update(ctx, key, data, curRev)
		}
	}
	if err != nil {
		return fmt.Errorf("settle %s: %w", c.Email, err)
	}
	return nil
}

// GiveUp marks a claim still sending at rev unknown: its worker is gone
// and nobody can tell whether the message went. Another write since rev
// (the worker's outcome) wins; either way GiveUp returns the key as it is
// now.
func (cn *Conn) GiveUp(ctx context.Context, key string, rev uint64, c Claim) (ClaimEntry, error) {
	c.State = Unknown
	c.Error = "the worker holding it stopped before its outcome was recorded"
	data, err := json.Marshal(c)
	if err != nil {
		return ClaimEntry{}, err
	}
	newRev, err := cn.claims.Update(ctx, key, data, rev)
	switch {
	case err == nil:
		return ClaimEntry{Key: key, Rev: newRev, Claim: c}, nil
	case !errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return ClaimEntry{}, fmt.Errorf("give up %s: %w", c.Email, err)
	}
	cur, curRev, err := cn.get(ctx, key)
	if err != nil {
		return ClaimEntry{}, fmt.Errorf("give up %s: %w", c.Email, err)
	}
	return ClaimEntry{Key: key, Rev: curRev, Claim: cur}, nil
}

func (cn *Conn) get(ctx context.Context, key string) (Claim, uint64, error) {
	e, err := cn.claims.Get(ctx, key)
	if err != nil {
		return Claim{}, 0, err
	}
	var c Claim
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		return Claim{}, 0, fmt.Errorf("claim %s: %w", key, err)
	}
	return c, e.Revision(), nil
}

// ClaimEntry is one recipient's key as read or watched.
type ClaimEntry struct {
	Key string
	Rev uint64
	Claim
}

// Claims returns every recipient's current claim or outcome for campaign.
func (cn *Conn) Claims(ctx context.Context, campaign string) ([]ClaimEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	w, err := cn.claims.Watch(ctx, campaign+".*", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	var out []ClaimEntry
	for {
		select {
		case e := <-w.Updates():
			if e == nil {
				return out, nil // the initial values are all there
			}
			ce, err := decodeEntry(e)
			if err != nil {
				return nil, err
			}
			out = append(out, ce)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// WatchClaims calls each for every claim of campaign, current ones first,
// then every change, until ctx ends or each returns an error. ready is
// called once, after the current ones.
func (cn *Conn) WatchClaims(ctx context.Context, campaign string, ready func(), each func(ClaimEntry) error) error {
	w, err := cn.claims.Watch(ctx, campaign+".*", jetstream.IgnoreDeletes())
	if err != nil {
		return err
	}
	defer w.Stop()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return ctx.Err()
			}
			if e == nil {
				ready()
				continue
			}
			ce, err := decodeEntry(e)
			if err != nil {
				return err
			}
			if err := each(ce); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func decodeEntry(e jetstream.KeyValueEntry) (ClaimEntry, error) {
	var c Claim
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		return ClaimEntry{}, fmt.Errorf("claim %s: %w", e.Key(), err)
	}
	return ClaimEntry{Key: e.Key(), Rev: e.Revision(), Claim: c}, nil
}

// CampaignKey turns a campaign's name into the prefix of its keys and
// subjects: letters, digits, '-' and '_' only, followed by a hash of the
// whole name, so two names that differ only in other characters stay
// apart.
func CampaignKey(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 40 {
			break
		}
	}
	h := sha256.Sum256([]byte(name))
	return b.String() + "-" + hex.EncodeToString(h[:4])
}
