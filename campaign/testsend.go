package campaign

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/mailrun/mailrun/journal"
	"github.com/mailrun/mailrun/render"
	"github.com/mailrun/mailrun/sender"
)

// TestSend renders one recipient's message with "[TEST] " before the
// subject and sends it to addr only, without a journal: a proof before the
// real run. only picks the recipient by CSV row number or address; empty
// means the first valid row. In group mode it sends the group message.
// The test message carries no List-Unsubscribe header. It returns the
// recipient used (Row 0 for a group message).
func TestSend(ctx context.Context, c *Campaign, m Mailer, addr, only string) (render.Recipient, error) {
	var none render.Recipient
	if msg := checkAddr(addr); msg != "" {
		return none, fmt.Errorf("--test: %s", msg)
	}
	rc, err := c.RenderConfig()
	if err != nil {
		return none, err
	}
	rc.Subject = "[TEST] " + rc.Subject
	// A tester who clicks "unsubscribe" in a test message must not
	// unsubscribe the real recipient whose message was rendered.
	rc.Unsubscribe = render.Unsubscribe{}
	if c.Mode == "group" && only != "" {
		return none, fmt.Errorf("--only: a group campaign has one message for everybody; leave --only out")
	}
	rd, err := render.New(rc)
	if err != nil {
		return none, err
	}
	defer rd.Close()
	recs, err := OpenRecipients(c)
	if err != nil {
		return none, err
	}
	defer recs.Close()
	var (
		rec   render.Recipient
		found bool
		group []string
	)
	for !found {
		r, err := recs.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var ps Problems
		if errors.As(err, &ps) {
			continue
		}
		if err != nil {
			return none, err
		}
		if c.Mode == "group" {
			group = append(group, r.Email)
			continue
		}
		if only == "" || only == strconv.Itoa(r.Row) || strings.EqualFold(only, r.Email) {
			rec, found = r, true
		}
	}
	var msg *render.Message
	switch {
	case c.Mode == "group" && len(group) > 0:
		msg, err = rd.RenderGroup(group)
	case found:
		msg, err = rd.Render(rec)
	case only != "":
		return none, fmt.Errorf("--only %q: no valid recipient with that row or address in %s", only, c.Recipients.File)
	default:
		return none, fmt.Errorf("%s: no valid recipient", c.Recipients.File)
	}
	if err != nil && c.Mode == "group" {
		return rec, fmt.Errorf("render group message: %w", err)
	}
	if err != nil {
		return rec, fmt.Errorf("%s:%d <%s>: render: %w", c.Recipients.File, rec.Row, rec.Email, err)
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

// WriteReport lists every recipient's last outcome from the journal at
// path, in row order, as "csv" or "json" (one JSON object per line). CSV
// cells that a spreadsheet would run as a formula (starting with = + - @,
// tab or CR) are prefixed with a single quote (OWASP CSV injection).
func WriteReport(w io.Writer, path, format string) error {
	rep, err := journal.Latest(path)
	if err != nil {
		return err
	}
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		for _, e := range rep.Recipients {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	case "csv", "":
		cw := csv.NewWriter(w)
		cw.Write([]string{"row", "email", "status", "reason", "code", "enhanced", "reply", "message_id", "attempts", "time", "error"})
		for _, e := range rep.Recipients {
			var code, enh, text string
			if e.Reply != nil {
				code, enh, text = strconv.Itoa(e.Reply.Code), e.Reply.Enhanced, e.Reply.Text
			}
			row := []string{strconv.Itoa(e.Row), e.Email, string(e.Status), e.Reason, code, enh, text, e.MessageID,
				strconv.Itoa(e.Attempts), e.Time.UTC().Format("2006-01-02T15:04:05Z"), e.Error}
			for i := range row {
				row[i] = cellSafe(row[i])
			}
			cw.Write(row)
		}
		cw.Flush()
		return cw.Error()
	default:
		return fmt.Errorf("--format %q: want csv or json", format)
	}
}

// cellSafe defuses a CSV cell that spreadsheets would evaluate.
func cellSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
