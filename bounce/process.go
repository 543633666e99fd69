package bounce

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/mailrun/mailrun/campaign"
	"github.com/mailrun/mailrun/mailbox"
)

// Mailbox is what Process needs of a bounce mailbox session;
// *mailbox.IMAP and *mailbox.POP3 satisfy it. Closing the session stays with
// the caller: for POP3 only Close (QUIT) commits the deletions.
type Mailbox interface {
	List(ctx context.Context) ([]mailbox.Item, error)
	Fetch(ctx context.Context, id string) ([]byte, error)
	Delete(ctx context.Context, id string) error
	Move(ctx context.Context, id, mailbox string) error
}

// The values of Options.After.
const (
	AfterMove   = "move"
	AfterDelete = "delete"
	AfterKeep   = "keep"
)

// Options shape a Process run. The zero value reads and reports only
// (After "" is keep) and writes no suppression file.
type Options struct {
	// After is what happens to a message once it has been understood:
	// "move" (to Processed, IMAP only), "delete" or "keep" (the default).
	// Only a message recognised as a bounce is moved or deleted: any other
	// (an auto-reply, a person's answer) stays where it was, since a person
	// may need to read it, and is listed. A message that could not be
	// fetched or parsed is always kept.
	After string
	// Processed is the folder "move" files messages in; default "Processed".
	Processed string
	// WriteTo is the suppression file hard-bounced addresses are appended
	// to (no duplicates, atomic replace; see campaign.AppendSuppress).
	// Empty means no file is written.
	WriteTo string
	// DryRun reads and classifies but changes nothing: no file, no Mark,
	// no move or delete.
	DryRun bool
	// Mark, when set, records the hard-bounced recipients in the campaign
	// journal, all in one call (one journal run, not one per bounce): each
	// Found has the address, its status and diagnostic, and the bounced
	// message's Message-ID ("" when the bounce does not quote it), once per
	// distinct pair. An error keeps every hard-bounce message in the mailbox
	// so that a later run marks them again.
	Mark func([]Found) error
}

// Message is the outcome for one message of the mailbox.
type Message struct {
	// ID is the mailbox's ID (IMAP UID or POP3 UIDL).
	ID string
	// Report is nil when the message could not be fetched or parsed.
	Report *Report
	// Err is the fetch, parse, mark, move or delete error, if any.
	Err error
	// Done is what happened to the message: "moved", "deleted" or "kept";
	// in a dry run, what would have happened ("would move" ...).
	Done string
}

// Summary is what a Process run found and did.
type Summary struct {
	// Messages are in mailbox order.
	Messages []Message
	// Suppressed lists the distinct hard-bounced addresses, sorted, that
	// were handed to the suppression file (in a dry run: would have been).
	// Addresses already in the file are not added twice.
	Suppressed []string
	// WriteTo and DryRun repeat the options, for Print.
	WriteTo string
	DryRun  bool
}

// Found is one recipient of one bounce, for listings.
type Found struct {
	Rcpt
	// ID is the bounce's mailbox ID; MessageID the bounced message's.
	ID, MessageID string
}

// Process reads every message of mb and acts on it:
//  1. List the messages, then Fetch and Parse each one; a fetch or parse
//     error is recorded and the message kept;
//  2. append every hard-bounced address to opts.WriteTo in one atomic write,
//     before anything is removed from the mailbox, so a crash cannot lose
//     a bounce;
//  3. call opts.Mark for each hard-bounced recipient;
//  4. move, delete or keep each understood message per opts.After.
//
// Process returns an error, and changes nothing in the mailbox, when the
// options are invalid, List fails or the suppression file cannot be written.
// Problems with single messages are in Summary (see Summary.Errors).
func Process(ctx context.Context, mb Mailbox, opts Options) (*Summary, error) {
	if opts.After == "" {
		opts.After = AfterKeep
	}
	if opts.Processed == "" {
		opts.Processed = "Processed"
	}
	switch opts.After {
	case AfterMove, AfterDelete, AfterKeep:
	default:
		return nil, fmt.Errorf("bounces: after %q: want move, delete or keep", opts.After)
	}
	sum := &Summary{WriteTo: opts.WriteTo, DryRun: opts.DryRun}

	items, err := mb.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("bounces: %w", err)
	}
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("bounces: %w", err)
		}
		m := Message{ID: it.ID, Done: "kept"}
		raw, err := mb.Fetch(ctx, it.ID)
		if err == nil {
			m.Report, err = Parse(raw)
		}
		if err != nil {
			m.Err = fmt.Errorf("message %s: %w", it.ID, err)
		}
		sum.Messages = append(sum.Messages, m)
	}

	sum.collect()

	if opts.DryRun {
		for i := range sum.Messages {
			if d := plan(sum.Messages[i], opts.After); d != "kept" {
				sum.Messages[i].Done = "would " + strings.TrimSuffix(d, "d")
			}
		}
		return sum, nil
	}
	if opts.WriteTo != "" && len(sum.Suppressed) > 0 {
		if err := campaign.AppendSuppress(opts.WriteTo, sum.Suppressed); err != nil {
			return sum, fmt.Errorf("bounces: nothing moved or deleted: %w", err)
		}
	}
	if opts.Mark != nil {
		var found []Found
		seen := map[string]bool{}
		for _, f := range sum.Hard() {
			k := f.MessageID + "\x00" + campaign.AddrKey(f.Addr)
			if !seen[k] {
				seen[k] = true
				found = append(found, f)
			}
		}
		if len(found) > 0 {
			if err := opts.Mark(found); err != nil {
				for i := range sum.Messages {
					m := &sum.Messages[i]
					if m.Err != nil || m.Report.Kind != Hard {
						continue
					}
					var addrs []string
					for _, r := range m.Report.Recipients {
						if r.Kind == Hard {
							addrs = append(addrs, r.Addr)
						}
					}
					m.Err = fmt.Errorf("message %s: mark %s bounced: %w", m.ID, strings.Join(addrs, ", "), err)
				}
			}
		}
	}
	for i := range sum.Messages {
		m := &sum.Messages[i]
		var err error
		switch plan(*m, opts.After) {
		case "moved":
			if err = mb.Move(ctx, m.ID, opts.Processed); err == nil {
				m.Done = "moved"
			}
		case "deleted":
			if err = mb.Delete(ctx, m.ID); err == nil {
				m.Done = "deleted"
			}
		}
		if err != nil {
			m.Err = fmt.Errorf("message %s: %w", m.ID, err)
		}
	}
	return sum, nil
}

// collect fills Suppressed from the hard bounces.
func (s *Summary) collect() {
	seen := map[string]bool{}
	s.Suppressed = nil
	for _, f := range s.Hard() {
		if k := campaign.AddrKey(f.Addr); !seen[k] {
			seen[k] = true
			s.Suppressed = append(s.Suppressed, f.Addr)
		}
	}
}

// plan says what After means for one message; see Options.After.
func plan(m Message, after string) string {
	switch {
	case m.Err != nil:
		return "kept"
	case m.Report.Kind == NotBounce:
		return "kept"
	case after == AfterMove:
		return "moved"
	case after == AfterDelete:
		return "deleted"
	}
	return "kept"
}

func (s *Summary) found(kind Kind) []Found {
	var out []Found
	for _, m := range s.Messages {
		if m.Report == nil {
			continue
		}
		for _, r := range m.Report.Recipients {
			if r.Kind == kind {
				out = append(out, Found{Rcpt: r, ID: m.ID, MessageID: m.Report.OriginalMessageID})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Found) int {
		return cmp.Or(compareAddrs(a.Addr, b.Addr), compareIDs(a.ID, b.ID))
	})
	return out
}

// Hard lists the hard-bounced recipients, sorted by address then message.
func (s *Summary) Hard() []Found { return s.found(Hard) }

// Soft lists the soft-bounced recipients, sorted by address then message.
func (s *Summary) Soft() []Found { return s.found(Soft) }

// NotBounces lists the messages that are not bounces, in mailbox order.
func (s *Summary) NotBounces() []Message {
	return s.filter(func(m Message) bool { return m.Err == nil && m.Report.Kind == NotBounce })
}

// Errors lists the messages with an error, in mailbox order.
func (s *Summary) Errors() []Message {
	return s.filter(func(m Message) bool { return m.Err != nil })
}

func (s *Summary) filter(keep func(Message) bool) []Message {
	var out []Message
	for _, m := range s.Messages {
		if keep(m) {
			out = append(out, m)
		}
	}
	return out
}

// compareAddrs orders addresses as a reader expects, ignoring case, with
// the exact comparison as a tie-breaker so the order is total.
func compareAddrs(a, b string) int {
	return cmp.Or(cmp.Compare(strings.ToLower(a), strings.ToLower(b)), cmp.Compare(campaign.AddrKey(a), campaign.AddrKey(b)), cmp.Compare(a, b))
}

// compareIDs orders numeric IDs (IMAP UIDs) numerically and others as text.
func compareIDs(a, b string) int {
	return cmp.Or(cmp.Compare(len(a), len(b)), cmp.Compare(a, b))
}

// Print writes the summary: one line per hard and soft recipient, not-bounce
// and error, then totals. The same Summary always prints the same bytes.
// Text from the bounces is stripped of control characters, so a hostile
// message cannot drive the terminal.
func (s *Summary) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, f := range s.Hard() {
		fmt.Fprintf(tw, "hard\t%s\t%s\t%s\t%s\n", clean(f.Addr, 80), f.Status, clean(f.MessageID, 80), clean(f.Diagnostic, 100))
	}
	for _, f := range s.Soft() {
		fmt.Fprintf(tw, "soft\t%s\t%s\t%s\t%s\n", clean(f.Addr, 80), f.Status, clean(f.MessageID, 80), clean(f.Diagnostic, 100))
	}
	for _, m := range s.NotBounces() {
		fmt.Fprintf(tw, "not a bounce\tmessage %s\t%s\t%s\t%s\n", clean(m.ID, 40), m.Done, clean(m.Report.Reason, 60), clean(m.Report.Subject, 80))
	}
	for _, m := range s.Errors() {
		fmt.Fprintf(tw, "error\tmessage %s\t%s\t%s\n", clean(m.ID, 40), m.Done, clean(m.Err.Error(), 160))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var counts [3]int
	for _, m := range s.Messages {
		if m.Report != nil {
			counts[m.Report.Kind]++
		}
	}
	prefix := ""
	if s.DryRun {
		prefix = "dry run: "
	}
	_, err := fmt.Fprintf(w, "%s%d messages: %d hard, %d soft, %d not a bounce, %d with errors\n",
		prefix, len(s.Messages), counts[Hard], counts[Soft], counts[NotBounce], len(s.Errors()))
	if err != nil {
		return err
	}
	if s.WriteTo != "" {
		verb := "added to"
		if s.DryRun {
			verb = "would be added to"
		}
		_, err = fmt.Fprintf(w, "%s%d hard-bounced addresses %s %s (duplicates skipped)\n", prefix, len(s.Suppressed), verb, s.WriteTo)
	}
	return err
}

// clean makes untrusted text safe and short for one line of output.
func clean(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return '?'
		}
		return r
	}, s)
	if r := []rune(s); len(r) > max {
		s = string(r[:max-3]) + "..."
	}
	return s
}
