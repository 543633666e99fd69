package gallery

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
)

// maxDepth bounds the nesting of multiparts a message may have.
const maxDepth = 16

// Part is one leaf of a message's MIME tree, decoded: an inline image or
// an attachment.
type Part struct {
	// Type is the media type, lower case, without parameters.
	Type string
	// Name is the decoded file name; "" when the part has none.
	Name string
	// CID is the Content-ID without its angle brackets; "" when none.
	CID string
	// Data is the part's content, transfer encoding undone.
	Data []byte
}

// Message is a message read once for its page: the headers a reader sees,
// its two bodies and its other leaves. Both the files written by preview
// and the pages served by mailrun serve are made from it.
type Message struct {
	// Header is the message's header, as net/mail reads it.
	Header mail.Header
	// HTML and Text are the first text/html and text/plain leaves that
	// are not attachments, decoded.
	HTML, Text string
	// Inline are the parts with a Content-ID that the HTML may reference
	// as cid: URLs (RFC 2392).
	Inline []Part
	// Attachments are every other leaf.
	Attachments []Part
	// Size is the size of the message in bytes.
	Size int
}

var words = &mime.WordDecoder{}

// decodeHeader decodes RFC 2047 encoded words; a value it cannot decode is
// shown as it is.
func decodeHeader(v string) string {
	if d, err := words.DecodeHeader(v); err == nil {
		return d
	}
	return v
}

// Parse reads an RFC 5322 message and walks its MIME tree (RFC 2045,
// 2046): the first text/html and text/plain leaves that are not
// attachments are the bodies, leaves with a Content-ID are inline parts,
// the others attachments. The error names what could not be parsed.
func Parse(data []byte) (*Message, error) {
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("parse message: %w", err)
	}
	p := &Message{Header: m.Header, Size: len(data)}
	if err := p.walk(textproto.MIMEHeader(m.Header), m.Body, 0); err != nil {
		return nil, fmt.Errorf("parse message: %w", err)
	}
	return p, nil
}

// Entry is m's line in the index: row and eml are the caller's, the rest
// comes from the headers and the parts.
func (m *Message) Entry(row int, eml string) Entry {
	e := Entry{Row: row, Size: m.Size, Subject: decodeHeader(m.Header.Get("Subject"))}
	if eml != "" {
		e.EML, e.Page = eml, PageName(eml)
	}
	if to, err := m.Header.AddressList("To"); err == nil && len(to) > 0 {
		e.Address, e.Name = to[0].Address, to[0].Name
	}
	for _, a := range m.Attachments {
		e.Attachments = append(e.Attachments, a.Name)
	}
	return e
}

func (m *Message) walk(h textproto.MIMEHeader, body io.Reader, depth int) error {
	ctype, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		ctype, params = "text/plain", nil
	}
	if strings.HasPrefix(ctype, "multipart/") {
		if depth >= maxDepth {
			return errors.New("multipart nested too deep")
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			sub, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := m.walk(sub.Header, sub, depth+1); err != nil {
				return err
			}
		}
	}
	data, err := io.ReadAll(decodeBody(h.Get("Content-Transfer-Encoding"), body))
	if err != nil {
		return fmt.Errorf("%s part: %w", ctype, err)
	}
	disp, dparams, _ := mime.ParseMediaType(h.Get("Content-Disposition"))
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	attached := disp == "attachment"
	pt := Part{Type: ctype, Name: decodeHeader(name), Data: data,
		CID: strings.Trim(strings.TrimSpace(h.Get("Content-ID")), "<>")}
	switch {
	case !attached && ctype == "text/html" && m.HTML == "":
		m.HTML = string(data)
	case !attached && ctype == "text/plain" && m.Text == "":
		m.Text = string(data)
	case !attached && pt.CID != "":
		m.Inline = append(m.Inline, pt)
	default:
		m.Attachments = append(m.Attachments, pt)
	}
	return nil
}

// decodeBody undoes a Content-Transfer-Encoding (RFC 2045 section 6).
func decodeBody(cte string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, r)
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	}
	return r
}
