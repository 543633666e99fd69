package mailing

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/mailrun/mailrun/campaign"
	"github.com/mailrun/mailrun/render"
	"github.com/mailrun/mailrun/sender"
)

// ErrOnlyGroup is returned by TestSend when a recipient is picked in a
// group campaign, which has one message for everybody.
var ErrOnlyGroup = errors.New("a group campaign has one message for everybody; pick no recipient")

// ErrTestAddress is matched by the error of TestSend for an address that
// cannot go into an envelope.
var ErrTestAddress = errors.New("test address")

// ErrNoRecipient is returned by TestSend when no valid row matches the
// pick (or none is valid at all).
var ErrNoRecipient = errors.New("no valid recipient")

// TestSend renders one recipient's message with "[TEST] " before the
// subject and sends it to addr only, without a journal: a proof before the
// real run. only picks the recipient by CSV row number or address; empty
// means the first valid row. In group mode it sends the group message.
// The test message carries no List-Unsubscribe header. It returns the
// recipient used (Row 0 for a group message). An addr that is no bare
// address is refused before anything is rendered.
func TestSend(ctx context.Context, c *campaign.Campaign, m Mailer, addr, only string) (render.Recipient, error) {
	var none render.Recipient
	if err := campaign.CheckAddr(addr); err != nil {
		return none, fmt.Errorf("%w: %w", ErrTestAddress, err)
	}
	if c.Mode == "group" && only != "" {
		return none, ErrOnlyGroup
	}
	rd, err := newRenderer(c, func(rc *render.Config) {
		rc.Subject = "[TEST] " + rc.Subject
		// A tester who clicks "unsubscribe" in a test message must not
		// unsubscribe the real recipient whose message was rendered.
		rc.Unsubscribe = render.Unsubscribe{}
	})
	if err != nil {
		return none, err
	}
	defer rd.Close()
	msg, rec, err := testMessage(ctx, c, rd, only)
	if err != nil {
		return rec, err
	}
	res, err := m.Send(ctx, msg.From, []string{addr}, msg.Data)
	if err != nil {
		return rec, fmt.Errorf("send test message to <%s>: %w", addr, err)
	}
	if len(res.Rcpts) == 1 && res.Rcpts[0].Status != sender.Delivered {
		r := res.Rcpts[0]
		if r.Err != nil {
			return rec, fmt.Errorf("send test message to <%s>: %s: %w", addr, r.Status, r.Err)
		}
		return rec, fmt.Errorf("send test message to <%s>: %s", addr, r.Status)
	}
	return rec, nil
}

// testMessage renders the test send's message through the pipeline: the
// first valid row that only picks, or the group message.
func testMessage(ctx context.Context, c *campaign.Campaign, rd *render.Renderer, only string) (*render.Message, render.Recipient, error) {
	var none render.Recipient
	recs, err := campaign.OpenRecipients(c)
	if err != nil {
		return nil, none, err
	}
	defer recs.Close()
	picked := false
	p := &pipeline{recs: recs, ahead: 1}
	if c.Mode != "group" {
		p.rd = rd
		// The pipeline's producer is one goroutine: picked needs no lock.
		p.hold = func(rec render.Recipient) bool {
			pick := !picked && (only == "" || only == strconv.Itoa(rec.Row) || campaign.AddrKey(only) == campaign.AddrKey(rec.Email))
			picked = picked || pick
			return !pick
		}
	}
	var (
		msg   *render.Message
		rec   render.Recipient
		group []string
	)
	err = p.run(ctx, func(rw *row) error {
		switch {
		case rw.problems != nil || rw.held:
			return nil
		case c.Mode == "group":
			group = append(group, rw.rec.Email)
			return nil
		case rw.err != nil:
			rec = rw.rec
			return fmt.Errorf("%s:%d <%s>: render: %w", recs.File(), rec.Row, rec.Email, rw.err)
		}
		msg, rec = rw.msg, rw.rec
		return errStop
	})
	if err == nil {
		err = ctx.Err()
	}
	switch {
	case err != nil:
		return nil, rec, err
	case msg != nil:
		return msg, rec, nil
	case c.Mode == "group" && len(group) > 0:
		msg, err := rd.RenderGroup(group)
		if err != nil {
			return nil, none, fmt.Errorf("render group message: %w", err)
		}
		return msg, none, nil
	case only != "":
		return nil, none, fmt.Errorf("%w with row or address %q in %s", ErrNoRecipient, only, recs.File())
	}
	return nil, none, fmt.Errorf("%s: %w", recs.File(), ErrNoRecipient)
}
