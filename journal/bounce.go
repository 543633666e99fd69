package journal

import (
	"fmt"
	"slices"
	"strings"
)

// Index finds the recipients of a journal by Message-ID or address, for
// the bounce processor. It holds every recipient's last entry and every
// Message-ID ever recorded, so it is built only when asked, by ReadIndex.
type Index struct {
	key  Key
	last map[string]Entry    // address key -> last entry
	byID map[string][]string // Message-ID without <> -> address keys
}

// ReadIndex reads the journal at path, without taking the lock, into an
// Index; key decides which addresses are one recipient, as for Open.
// Errors are those of Read.
func ReadIndex(path string, key Key) (*Index, error) {
	ix := &Index{key: key, last: make(map[string]Entry), byID: make(map[string][]string)}
	err := Read(path, func(e Entry) error {
		k := key.of(e.Email)
		if e.Status == Sending {
			// The intent carries the Message-ID too: if the run died
			// before the outcome, a bounce may still name it.
			e.Status = Unknown
		}
		if _, ok := ix.last[k]; ok && e.Status == Skipped {
			return nil // see Skipped
		}
		ix.last[k] = e
		if id := normMessageID(e.MessageID); id != "" && !slices.Contains(ix.byID[id], k) {
			ix.byID[id] = append(ix.byID[id], k)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ix, nil
}

// normMessageID drops the angle brackets of RFC 5322 section 3.6.4, which
// a bounce may or may not quote, so both spellings match.
func normMessageID(id string) string {
	id = strings.TrimSpace(id)
	id = strings.TrimPrefix(id, "<")
	id = strings.TrimSuffix(id, ">")
	return strings.TrimSpace(id)
}

// ByEmail returns the last entry of the recipient addr (compared after
// the Index's Key); an intent without an outcome reads as Unknown.
func (ix *Index) ByEmail(addr string) (Entry, bool) {
	e, ok := ix.last[ix.key.of(addr)]
	return e, ok
}

// ByMessageID returns the last entries of the recipients of the message
// id, with or without its angle brackets: one for an individual message,
// several for a group message.
func (ix *Index) ByMessageID(id string) []Entry {
	var out []Entry
	for _, k := range ix.byID[normMessageID(id)] {
		out = append(out, ix.last[k])
	}
	return out
}

// Bounce is what a bounce message says about one failed recipient.
type Bounce struct {
	// Email is the Final-Recipient (or Original-Recipient) address; it
	// may be empty when the bounce names none.
	Email string
	// MessageID is the Message-ID of the bounced message, with or without
	// angle brackets; it may be empty.
	MessageID string
	// Reply is the status the bounce reports, e.g. Enhanced "5.1.1" and
	// the diagnostic text.
	Reply Reply
}

// Match returns the Bounced entries to record for bounces: one per
// recipient, in the order of bounces, for recipients not already bounced.
// A bounce matches by Message-ID first (the recipient it names, or the
// only recipient of that message, since forwarding can change the final
// address), and otherwise by address, but only a recipient whose message
// was sent or may have been (Unknown): a bounce for an address this
// campaign never mailed belongs to another campaign. Match updates the
// index, so a second bounce for the same recipient does not match again.
func (ix *Index) Match(bounces []Bounce) []Entry {
	var out []Entry
	for _, b := range bounces {
		k, ok := ix.matchID(b)
		if !ok {
			k = ix.key.of(b.Email)
			e, found := ix.last[k]
			ok = found && (e.Status == Sent || e.Status == Unknown)
		}
		if !ok {
			continue
		}
		last := ix.last[k]
		if last.Status == Bounced {
			continue
		}
		e := Entry{
			Row:       last.Row,
			Email:     last.Email,
			Status:    Bounced,
			MessageID: last.MessageID,
		}
		if b.Reply != (Reply{}) {
			reply := b.Reply
			e.Reply = &reply
		}
		if id := normMessageID(b.MessageID); id != "" {
			e.MessageID = id // spelt as send records it: without <>
		}
		last.Status = Bounced
		ix.last[k] = last
		out = append(out, e)
	}
	return out
}

func (ix *Index) matchID(b Bounce) (string, bool) {
	ks := ix.byID[normMessageID(b.MessageID)]
	if len(ks) == 0 {
		return "", false
	}
	if k := ix.key.of(b.Email); k != "" && slices.Contains(ks, k) {
		return k, true
	}
	if len(ks) == 1 {
		return ks[0], true
	}
	return "", false // a group message and an address it did not go to
}

// MarkBounced records the bounces that match recipients of the existing
// journal at path (see Index.Match) as Bounced, under the journal's lock,
// and returns the entries it recorded. It fails with an error matching
// ErrLocked while a send holds the journal, and never creates a journal.
// For a dry run, use ReadIndex and Index.Match, which change nothing.
func MarkBounced(path string, h Header, key Key, bounces []Bounce) ([]Entry, error) {
	if h.Command == "" {
		h.Command = "bounces"
	}
	j, err := open(path, h, key, false)
	if err != nil {
		return nil, err
	}
	// Read after locking, so no run can add recipients in between.
	ix, err := ReadIndex(path, key)
	if err != nil {
		j.Close()
		return nil, err
	}
	marks := ix.Match(bounces)
	for _, e := range marks {
		if err := j.Queue(e); err != nil {
			j.Close()
			return nil, fmt.Errorf("mark bounced: %w", err)
		}
	}
	if err := j.Close(); err != nil {
		return nil, fmt.Errorf("mark bounced: %w", err)
	}
	return marks, nil
}
