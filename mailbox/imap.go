package mailbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// IMAP is a session with one selected IMAP folder (RFC 9051, RFC 3501).
// IDs are UIDs, which stay valid for the session.
type IMAP struct {
	c       *imapclient.Client
	cfg     Config
	created map[string]bool
}

var _ Mailbox = (*IMAP)(nil)

func openIMAP(ctx context.Context, cfg Config) (*IMAP, error) {
	conn, tc, err := cfg.dial(ctx)
	if err != nil {
		return nil, err
	}
	where := fmt.Sprintf("imap %s", cfg.addr())
	m := &IMAP{cfg: cfg, created: map[string]bool{}}
	// Every step below runs under one deadline; closing the connection is
	// the only way to interrupt imapclient, which takes no context.
	err = m.guard(ctx, func() { _ = conn.Close() }, func() error {
		var err error
		if cfg.Security == "starttls" {
			// NewStartTLS fails when the server refuses STARTTLS, so there
			// is no silent downgrade to plaintext.
			m.c, err = imapclient.NewStartTLS(conn, &imapclient.Options{TLSConfig: tc})
			if err != nil {
				return fmt.Errorf("%s: starttls: %w", where, err)
			}
		} else {
			m.c = imapclient.New(conn, nil)
		}
		if err := m.c.WaitGreeting(); err != nil {
			return fmt.Errorf("%s: greeting: %w", where, err)
		}
		if err := m.c.Login(cfg.Username, cfg.Password).Wait(); err != nil {
			// The server's reply never echoes the password; only the user is named.
			return fmt.Errorf("%s: login as %q: %w", where, cfg.Username, err)
		}
		if _, err := m.c.Select(cfg.Mailbox, nil).Wait(); err != nil {
			return fmt.Errorf("%s: select %q: %w", where, cfg.Mailbox, err)
		}
		return nil
	})
	if err != nil {
		if m.c != nil {
			_ = m.c.Close()
		}
		_ = conn.Close()
		return nil, err
	}
	return m, nil
}

// guard runs f with ctx and the command timeout enforced by calling abort,
// which closes the connection: imapclient blocks in Wait without a context.
func (m *IMAP) guard(ctx context.Context, abort func(), f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	stop := context.AfterFunc(ctx, abort)
	err := f()
	if !stop() && err != nil {
		// The connection was closed under f; report why rather than only
		// the resulting "use of closed connection".
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return err
}

func (m *IMAP) run(ctx context.Context, f func() error) error {
	return m.guard(ctx, func() { _ = m.c.Close() }, f)
}

// List returns every message of the selected folder by UID, with its size.
func (m *IMAP) List(ctx context.Context) ([]Item, error) {
	var items []Item
	err := m.run(ctx, func() error {
		// A NOOP makes the server report messages that arrived since SELECT.
		if err := m.c.Noop().Wait(); err != nil {
			return err
		}
		if mb := m.c.Mailbox(); mb == nil || mb.NumMessages == 0 {
			return nil
		}
		msgs, err := m.c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, RFC822Size: true}).Collect()
		if err != nil {
			return err
		}
		for _, msg := range msgs {
			items = append(items, Item{ID: strconv.FormatUint(uint64(msg.UID), 10), Size: int(msg.RFC822Size)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("imap list %q: %w", m.cfg.Mailbox, err)
	}
	return items, nil
}

func parseUID(id string) (imap.UIDSet, error) {
	n, err := strconv.ParseUint(id, 10, 32)
	if err != nil || n == 0 {
		return nil, fmt.Errorf("imap: bad message id %q", id)
	}
	return imap.UIDSetNum(imap.UID(n)), nil
}

// Fetch returns the whole message; BODY.PEEK leaves the \Seen flag alone so a
// message that is kept looks untouched to a human reader.
func (m *IMAP) Fetch(ctx context.Context, id string) ([]byte, error) {
	set, err := parseUID(id)
	if err != nil {
		return nil, err
	}
	section := &imap.FetchItemBodySection{Peek: true}
	var raw []byte
	err = m.run(ctx, func() error {
		msgs, err := m.c.Fetch(set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			return errors.New("no such message")
		}
		raw = msgs[0].FindBodySection(section)
		if raw == nil {
			return errors.New("server sent no body")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("imap fetch uid %s: %w", id, err)
	}
	return raw, nil
}

// Delete flags the message \Deleted and expunges it at once. With UIDPLUS
// (RFC 4315) only this UID is expunged; without it EXPUNGE also removes
// messages someone else flagged \Deleted, which is what they asked for.
func (m *IMAP) Delete(ctx context.Context, id string) error {
	set, err := parseUID(id)
	if err != nil {
		return err
	}
	err = m.run(ctx, func() error {
		if err := m.c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
			return err
		}
		if m.c.Caps().Has(imap.CapUIDPlus) {
			return m.c.UIDExpunge(set).Close()
		}
		return m.c.Expunge().Close()
	})
	if err != nil {
		return fmt.Errorf("imap delete uid %s: %w", id, err)
	}
	return nil
}

// Move moves the message with MOVE (RFC 6851), or COPY + delete on servers
// without it, creating the target folder first when it does not exist.
func (m *IMAP) Move(ctx context.Context, id, mailbox string) error {
	set, err := parseUID(id)
	if err != nil {
		return err
	}
	if mailbox == "" {
		return errors.New("imap move: empty target mailbox")
	}
	err = m.run(ctx, func() error {
		if err := m.ensure(mailbox); err != nil {
			return err
		}
		_, err := m.c.Move(set, mailbox).Wait()
		return err
	})
	if err != nil {
		return fmt.Errorf("imap move uid %s to %q: %w", id, mailbox, err)
	}
	return nil
}

// ensure creates mailbox unless it exists; the answer is cached for the
// session so a run of many moves lists it once.
func (m *IMAP) ensure(mailbox string) error {
	if m.created[mailbox] {
		return nil
	}
	found, err := m.c.List("", mailbox, nil).Collect()
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	if len(found) == 0 {
		if err := m.c.Create(mailbox, nil).Wait(); err != nil {
			var ierr *imap.Error
			// Another client may have created it in between.
			if !errors.As(err, &ierr) || ierr.Code != imap.ResponseCodeAlreadyExists {
				return fmt.Errorf("create: %w", err)
			}
		}
	}
	m.created[mailbox] = true
	return nil
}

// Close logs out, which also expunges nothing further: deletions are already
// expunged by Delete.
func (m *IMAP) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.Timeout)
	defer cancel()
	err := m.run(ctx, func() error { return m.c.Logout().Wait() })
	cerr := m.c.Close()
	if err != nil {
		return fmt.Errorf("imap logout: %w", err)
	}
	if cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		return fmt.Errorf("imap close: %w", cerr)
	}
	return nil
}
