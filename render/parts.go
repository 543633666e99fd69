package render

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"

	gomail "github.com/wneessen/go-mail"
)

// Attachments and inline images are encoded by render, not by go-mail:
// encodePart turns a file into its whole MIME part (header block and
// base64 body) once, and compose gives go-mail a small slot in its place
// and splices the part into the bytes go-mail wrote (splice). A file the
// same for every row (a static attachment, a cached image) is thus
// encoded once per Renderer instead of once per message; go-mail encoded a
// 30 MB attachment through a growing buffer for every recipient. The bytes
// are those go-mail wrote itself (TestEncodePartIsGoMails pins it).

// encodePart returns the MIME part of a file of name, media type typ and
// Content-ID cid ("" for an attachment) with the given disposition
// ("attachment" or "inline"), exactly as go-mail v0.8.1 writes it inside a
// multipart: the header block that multipart.Writer.CreatePart writes for
// the fields below plus the Content-Transfer-Encoding go-mail adds, then
// the base64 body (encodeBase64). Content-Type and Content-Disposition are
// formatted here because go-mail puts RFC 2047 words inside quoted
// parameters; mime.FormatMediaType uses RFC 2231 for non-ASCII names.
func encodePart(name, typ, cid, disposition string, data []byte) []byte {
	h := textproto.MIMEHeader{}
	t, params, err := mime.ParseMediaType(typ)
	if err != nil {
		t, params = "application/octet-stream", map[string]string{}
	}
	params["name"] = name
	h.Set("Content-Type", mime.FormatMediaType(t, params))
	h.Set("Content-Disposition", mime.FormatMediaType(disposition, map[string]string{"filename": name}))
	if cid != "" {
		h.Set("Content-ID", "<"+cid+">")
	}
	h.Set("Content-Transfer-Encoding", "base64")
	head := partHeader(h)
	out := make([]byte, len(head), len(head)+base64Size(len(data)))
	copy(out, head)
	return encodeBase64(out, data)
}

// partHeader is the header block multipart.Writer.CreatePart writes for h,
// its blank line included, without the boundary line before it: the
// writer go-mail uses formats it, so the order and spelling are the same.
func partHeader(h textproto.MIMEHeader) []byte {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	const boundary = "b"
	if err := w.SetBoundary(boundary); err != nil {
		panic(err) // a constant valid boundary
	}
	if _, err := w.CreatePart(h); err != nil {
		panic(err) // a bytes.Buffer does not fail
	}
	return b.Bytes()[len("--"+boundary+"\r\n"):]
}

// lineLen is the length of a base64 line without its CRLF (RFC 2045
// section 6.8 allows 76), go-mail's MaxBodyLength.
const lineLen = 76

// base64Size is the length of n bytes encoded by encodeBase64.
func base64Size(n int) int {
	e := base64.StdEncoding.EncodedLen(n)
	return e + 2*((e+lineLen-1)/lineLen)
}

// encodeBase64 appends data to dst in base64, lines of lineLen characters
// each ended by CRLF, the last one shorter, and no line at all for empty
// data, as go-mail's base64LineBreaker writes it.
func encodeBase64(dst, data []byte) []byte {
	const in = lineLen / 4 * 3 // input bytes per full line
	for len(data) > 0 {
		n := min(in, len(data))
		dst = base64.StdEncoding.AppendEncode(dst, data[:n])
		dst = append(dst, '\r', '\n')
		data = data[n:]
	}
	return dst
}

// slotHeader is the header of the part go-mail writes for each file in
// place of the real one: every field go-mail would otherwise add is
// present, so it adds none and changes nothing, and the body is empty.
// The slot's bytes are partHeader(slotHeader()).
func slotHeader() textproto.MIMEHeader {
	return textproto.MIMEHeader{
		"Content-Disposition":       {"x"},
		"Content-Id":                {"x"},
		"Content-Transfer-Encoding": {"x"},
		"Content-Type":              {"mailrun-part"},
	}
}

// sharedSlots is how many slots a Renderer keeps for its messages; a
// message with more files gets its own list.
const sharedSlots = 16

// newSlots returns n go-mail files that are all the one slot file. They
// are shared by every message and only read: go-mail sets a file's fields
// only when they are missing.
func newSlots(n int) []*gomail.File {
	f := &gomail.File{Name: "part", Header: slotHeader(), Writer: writeNothing}
	l := make([]*gomail.File, n)
	for i := range l {
		l[i] = f
	}
	return l
}

func writeNothing(io.Writer) (int64, error) { return 0, nil }

// findSlots returns where the last n slots of msg start, in order. Every
// file part comes after the text and HTML parts, so the last n are the
// ones go-mail wrote for the files, even if a body held a slot's text.
// at is reused when it has room.
func findSlots(msg, slot []byte, n int, at []int) ([]int, error) {
	if cap(at) < n {
		at = make([]int, n)
	}
	at = at[:n]
	end := len(msg)
	for i := n - 1; i >= 0; i-- {
		j := bytes.LastIndex(msg[:end], slot)
		if j < 0 {
			return nil, errors.New("compose: the place of a file part is missing")
		}
		at[i], end = j, j
	}
	return at, nil
}

// pieces calls fn with the bytes of the finished message in order: msg
// with each slot at[i] (of length slot) replaced by parts[i].
func pieces(msg []byte, slot int, at []int, parts [][]byte, fn func([]byte)) {
	prev := 0
	for i, p := range parts {
		fn(msg[prev:at[i]])
		fn(p)
		prev = at[i] + slot
	}
	fn(msg[prev:])
}

// splice replaces the slots of msg at at (each of length slot) by parts,
// in place when msg has the capacity and no part is shorter than the
// slots before it make up for, else into one new slice of the exact size
// with head before it (the DKIM-Signature).
func splice(head string, msg []byte, slot int, at []int, parts [][]byte) []byte {
	size, shift, inPlace := len(msg), 0, len(head) == 0
	for _, p := range parts {
		shift += len(p) - slot
		inPlace = inPlace && shift >= 0
	}
	size += shift
	if !inPlace || cap(msg) < size {
		out := make([]byte, 0, len(head)+size)
		out = append(out, head...)
		pieces(msg, slot, at, parts, func(b []byte) { out = append(out, b...) })
		return out
	}
	// From the last piece to the first every piece moves right, or stays,
	// so no byte is overwritten before it is moved.
	out, tail, src := msg[:size], size, len(msg)
	for i := len(parts) - 1; i >= 0; i-- {
		tail -= copy(out[tail-(src-at[i]-slot):tail], msg[at[i]+slot:src])
		tail -= copy(out[tail-len(parts[i]):tail], parts[i])
		src = at[i]
	}
	return out
}

// partsSize is the length of parts together.
func partsSize(parts [][]byte) int {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return n
}
