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

// part is one leaf of a message's MIME tree, decoded.
type part struct {
	ctype    string // media type, lower case, without parameters
	name     string // file name, decoded; "" when none
	cid      string // Content-ID without angle brackets
	attached bool   // Content-Disposition: attachment
	data     []byte
}

// parsed is a message read once: the headers a reader sees and its leaves.
type parsed struct {
	header mail.Header
	html   string
	text   string
	inline []part // parts with a Content-ID that the HTML may reference
	attach []part // everything else that is not the HTML or text body
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

// parse reads an RFC 5322 message and walks its MIME tree (RFC 2045,
// 2046): the first text/html and text/plain leaves that are not
// attachments are the bodies, leaves with a Content-ID are inline parts,
// the others attachments.
func parse(data []byte) (*parsed, error) {
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("parse message: %w", err)
	}
	p := &parsed{header: m.Header}
	if err := p.walk(textproto.MIMEHeader(m.Header), m.Body, 0); err != nil {
		return nil, fmt.Errorf("parse message: %w", err)
	}
	return p, nil
}

func (p *parsed) walk(h textproto.MIMEHeader, body io.Reader, depth int) error {
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
			if err := p.walk(sub.Header, sub, depth+1); err != nil {
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
	pt := part{ctype: ctype, name: decodeHeader(name), attached: disp == "attachment", data: data,
		cid: strings.Trim(strings.TrimSpace(h.Get("Content-ID")), "<>")}
	switch {
	case !pt.attached && ctype == "text/html" && p.html == "":
		p.html = string(data)
	case !pt.attached && ctype == "text/plain" && p.text == "":
		p.text = string(data)
	case !pt.attached && pt.cid != "":
		p.inline = append(p.inline, pt)
	default:
		p.attach = append(p.attach, pt)
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
