package gallery

import (
	"io"
	"strings"
)

// Links are the URLs a message page points to. The files of a preview and
// the pages served by mailrun serve differ only in these.
type Links struct {
	// Index is the URL of the index.
	Index string
	// EML is the URL of the message file, offered for download.
	EML string
	// Part returns the URL of the message's i-th inline part (Message.Inline);
	// the HTML's cid: references to it are rewritten to that URL.
	Part func(i int, p Part) string
	// Prev and Next are the neighbouring rows' pages; "" when there is
	// none or they are not known (the files of a preview are written in
	// any order).
	Prev, Next string
	// Live is set on served pages only.
	Live *Live
}

// Live is what a served page has beyond a preview's file: the form that
// picks a recipient and the one script of the page, which reloads it when
// the campaign changes. The message itself stays in its sandboxed frame,
// where no script runs.
type Live struct {
	// Script is the URL of the page's script (same origin, so that the
	// page's policy can allow 'self' and nothing else).
	Script string
	// Version is the campaign's version the page shows; the script hands
	// it back so that a change made while the page loaded is not missed.
	Version uint64
	// Pick is the URL of the picker form (GET, field r: a row number or
	// an address).
	Pick string
	// Picked is the form's current value.
	Picked string
}

// WritePage writes the page of one message to w: e's row, the headers, the
// HTML in a sandboxed frame (at desktop and phone width), the text part,
// the attachments and e's problems. With m nil the page shows only the
// problems, which then stand where the message would be. The error is w's.
func WritePage(w io.Writer, e Entry, m *Message, l Links) error {
	v := pageView{Entry: e, EMLHref: l.EML, IndexHref: l.Index, Prev: l.Prev, Next: l.Next, Live: l.Live}
	if m != nil {
		html := m.HTML
		for i, pt := range m.Inline {
			if l.Part != nil && pt.CID != "" {
				html = strings.ReplaceAll(html, "cid:"+pt.CID, l.Part(i, pt))
			}
		}
		v.HTML, v.Text, v.HasMessage = html, m.Text, true
		for _, k := range []string{"From", "To", "Cc", "Subject", "Date", "Reply-To"} {
			if s := m.Header.Get(k); s != "" {
				v.Headers = append(v.Headers, headerView{k, decodeHeader(s)})
			}
		}
		for _, a := range m.Attachments {
			v.Attachments = append(v.Attachments, attachView{Name: a.Name, Type: a.Type, Size: len(a.Data)})
		}
	}
	return pageTmpl.Execute(w, v)
}

// Index is what an index page lists.
type Index struct {
	// Notes are the problems that belong to no row.
	Notes []string
	// Entries are the rows listed, in row order; their Page is used as
	// the link as it is.
	Entries []Entry
	// Count is the number of rows in all; more than len(Entries) when a
	// long list was cut.
	Count int
	// Live is set on a served index only.
	Live *Live
}

// WriteIndex writes an index page to w. The error is w's.
func WriteIndex(w io.Writer, x Index) error {
	if err := indexHead.Execute(w, indexView{Notes: x.Notes, Count: x.Count, Listed: len(x.Entries), Live: x.Live}); err != nil {
		return err
	}
	for _, e := range x.Entries {
		if err := rowTmpl.Execute(w, e); err != nil {
			return err
		}
	}
	return indexFoot.Execute(w, nil)
}
