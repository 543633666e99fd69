package render

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/textproto"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	gomail "github.com/wneessen/go-mail"
)

// goMailPart is the part go-mail itself writes for a file, as render gave
// it files before it encoded them itself: the header from mimeFile, the
// bytes through a Writer, go-mail's base64.
func goMailPart(t *testing.T, name, typ, cid, disposition string, data []byte) []byte {
	t.Helper()
	h := textproto.MIMEHeader{}
	mt, params, err := mime.ParseMediaType(typ)
	if err != nil {
		mt, params = "application/octet-stream", map[string]string{}
	}
	params["name"] = name
	h.Set("Content-Type", mime.FormatMediaType(mt, params))
	h.Set("Content-Disposition", mime.FormatMediaType(disposition, map[string]string{"filename": name}))
	if cid != "" {
		h.Set("Content-ID", "<"+cid+">")
	}
	f := &gomail.File{Name: name, ContentType: gomail.ContentType(typ), Header: h,
		Writer: func(w io.Writer) (int64, error) {
			n, err := w.Write(data)
			return int64(n), err
		}}
	const boundary = "BOUNDARY"
	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent(), gomail.WithBoundary(boundary))
	m.SetBodyString(gomail.TypeTextPlain, "hi")
	if disposition == "inline" {
		m.SetEmbeds([]*gomail.File{f})
	} else {
		m.SetAttachments([]*gomail.File{f})
	}
	var b bytes.Buffer
	if _, err := m.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	out := b.Bytes()
	end := bytes.LastIndex(out, []byte("\r\n--"+boundary+"--"))
	start := bytes.LastIndex(out[:end], []byte("\r\n--"+boundary+"\r\n"))
	if start < 0 || end < 0 {
		t.Fatalf("no file part in\n%s", out)
	}
	return out[start+len("\r\n--"+boundary+"\r\n") : end]
}

// The part render encodes once is, byte for byte, the part go-mail wrote
// for every message: header fields, their order, base64 line breaks.
func TestEncodePartIsGoMails(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	sizes := []int{0, 1, 2, 3, 56, 57, 58, 75, 76, 77, 113, 114, 115, 171, 1000, 4096 + 7, 100_000}
	names := []struct{ name, typ string }{
		{"a.pdf", "application/pdf"},
		{"Preisliste März.pdf", "application/pdf"},
		{`say "hi" \ now.txt`, "text/plain; charset=utf-8"},
		{"x y;z.png", "image/png"},
		{"noext", "application/octet-stream"},
		{"bad.type", "not a type"},
	}
	for _, size := range sizes {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(rnd.UintN(256))
		}
		for _, n := range names {
			for _, d := range []struct{ disposition, cid string }{{"attachment", ""}, {"inline", "logo.png.4371149be768@acme.example"}} {
				got := encodePart(n.name, n.typ, d.cid, d.disposition, data)
				want := goMailPart(t, n.name, n.typ, d.cid, d.disposition, data)
				if !bytes.Equal(got, want) {
					t.Fatalf("%s %q, %d bytes: got\n%.600q\nwant\n%.600q\n%s", d.disposition, n.name, size, got, want, firstDiff(got, want))
				}
				if len(got)-len(partHeader(headerOf(t, got))) != base64Size(size) {
					t.Errorf("%d bytes: base64Size %d is not the body's length", size, base64Size(size))
				}
			}
		}
	}
}

// headerOf parses the header block at the start of a part.
func headerOf(t *testing.T, part []byte) textproto.MIMEHeader {
	t.Helper()
	i := bytes.Index(part, []byte("\r\n\r\n"))
	h := textproto.MIMEHeader{}
	for l := range strings.SplitSeq(string(part[:i]), "\r\n") {
		k, v, _ := strings.Cut(l, ": ")
		h[k] = append(h[k], v)
	}
	return h
}

// splice gives the bytes of replacing each slot by its part, in place or
// not, with or without a signature before them.
func TestSplice(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	slot := []byte("<SLOT>")
	for i := range 2000 {
		n := rnd.IntN(5)
		var msg []byte
		var want bytes.Buffer
		var parts [][]byte
		head := ""
		if rnd.IntN(3) == 0 {
			head = "DKIM-Signature: x\r\n"
		}
		want.WriteString(head)
		for k := range n {
			seg := bytes.Repeat([]byte{byte('a' + k)}, rnd.IntN(20))
			p := bytes.Repeat([]byte{byte('A' + k)}, rnd.IntN(2*len(slot)+1)) // shorter or longer than the slot
			msg = append(append(msg, seg...), slot...)
			want.Write(seg)
			want.Write(p)
			parts = append(parts, p)
		}
		msg = append(msg, "end"...)
		want.WriteString("end")
		msg = append(make([]byte, 0, len(msg)+rnd.IntN(3*len(slot)*n+1)), msg...)
		at, err := findSlots(msg, slot, n, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := splice(head, msg, len(slot), at, parts)
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("case %d: got %q, want %q", i, got, want.Bytes())
		}
	}
	if _, err := findSlots([]byte("no slot here"), slot, 1, nil); err == nil {
		t.Error("findSlots: got no error for a missing slot")
	}
}

// A body that prints a slot's bytes cannot take a file's place: the files
// are the last slots of the message.
func TestSlotTextInBody(t *testing.T) {
	cfg := baseConfig()
	r := newRenderer(t, cfg)
	rc := zoe()
	rc.Fields["plan"] = string(r.slot)
	m, err := r.Render(rc)
	if err != nil {
		t.Fatal(err)
	}
	_, root := parseMessage(t, m.Data)
	if got, want := root.shape(), "multipart/mixed[multipart/related[multipart/alternative[text/plain,text/html],image/png],application/pdf]"; got != want {
		t.Errorf("shape: got %s, want %s", got, want)
	}
}

// More files than a Renderer keeps slots for, of every size near the
// slot's: each comes back whole, in order.
func TestManyFiles(t *testing.T) {
	files := map[string]string{"b.html": `<p>hi</p>`}
	var atts []string
	for i := range sharedSlots + 4 {
		name := fmt.Sprintf("f%02d.bin", i)
		files[name] = strings.Repeat(strconv.Itoa(i%10), i*7)
		atts = append(atts, name)
	}
	atts = append(atts, "{{.invoice}}.bin")
	files["A-100.bin"] = "per row"
	cfg := baseConfig()
	cfg.Dir = tempCampaign(t, files)
	cfg.Markdown, cfg.Layout, cfg.HTML, cfg.Attachments = "", "", "b.html", atts
	for _, dk := range []*DKIM{nil, {Domain: "acme.example", Selector: "sel", Signer: loadKey("dkim-ed25519.pem")}} {
		cfg.DKIM = dk
		m, err := newRenderer(t, cfg).Render(zoe())
		if err != nil {
			t.Fatal(err)
		}
		if dk != nil {
			verifyDKIM(t, m.Data, dk)
		}
		_, root := parseMessage(t, m.Data)
		if len(root.children) != len(atts)+1 {
			t.Fatalf("got %d parts, want %d", len(root.children), len(atts)+1)
		}
		for i, c := range root.children[1:] {
			want := files[strings.ReplaceAll(atts[i], "{{.invoice}}", "A-100")]
			got, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(c.body), "\r\n", ""))
			if err != nil || string(got) != want {
				t.Errorf("part %d: got %q (%v), want %q", i, got, err, want)
			}
		}
	}
}

// bigCampaign writes a campaign with one attachment of size random bytes,
// generated here so the repository stays small.
func bigCampaign(t testing.TB, size int) (Config, []byte) {
	t.Helper()
	data := make([]byte, size)
	rnd := rand.New(rand.NewPCG(5, 6))
	for i := range data {
		data[i] = byte(rnd.UintN(256))
	}
	cfg := baseConfig()
	dir := t.TempDir()
	for _, f := range []string{"body.md", "layout.html", "logo.png"} {
		b, err := os.ReadFile(filepath.Join(cfg.Dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Dir, cfg.Attachments = dir, []string{"big.bin"}
	return cfg, data
}

// A big attachment the same for every row is encoded once, in New: a
// message then allocates little more than its own bytes, where go-mail's
// encoding through a growing buffer took three times the message. The
// signature covers the spliced bytes.
func TestBigAttachmentEncodedOnce(t *testing.T) {
	const size = 4 << 20
	cfg, data := bigCampaign(t, size)
	signed := cfg
	signed.DKIM = &DKIM{Domain: "acme.example", Selector: "sel", Signer: loadKey("dkim-ed25519.pem")}
	m, err := newRenderer(t, signed).Render(zoe())
	if err != nil {
		t.Fatal(err)
	}
	verifyDKIM(t, m.Data, signed.DKIM)

	r := newRenderer(t, cfg)
	part := encodePart("big.bin", "application/octet-stream", "", "attachment", data)
	if got, want := r.StaticSize(), int64(len(part)); got != want {
		t.Errorf("StaticSize: got %d, want %d (the attachment's part; the layout reads columns)", got, want)
	}

	if m, err = r.Render(zoe()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(m.Data, part) {
		t.Fatal("the message does not hold the attachment's part")
	}
	_, root := parseMessage(t, m.Data)
	got, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(root.children[1].body), "\r\n", ""))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the attachment does not decode to the file (%v)", err)
	}

	// Without DKIM: go-msgauth's canonicalisation copies the message in
	// small pieces as it hashes it, garbage of twice its size however it
	// is given the bytes.
	const n = 5
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		if m, err = r.Render(zoe()); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	perMsg := (after.TotalAlloc - before.TotalAlloc) / n
	if limit := uint64(len(m.Data)) + 1<<20; perMsg > limit {
		t.Errorf("a message of %d bytes allocated %d bytes, want at most %d: is the attachment encoded per message?", len(m.Data), perMsg, limit)
	}
}

// StaticSize counts the images of a layout run once, not those of the
// body nor attachments named per row.
func TestStaticSize(t *testing.T) {
	cfg := baseConfig()
	png, err := os.ReadFile(filepath.Join(cfg.Dir, "logo.png"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dir = tempCampaign(t, map[string]string{"b.md": "![x](body.png)", "l.html": `{{.Body}}<img src="logo.png">`,
		"logo.png": string(png), "body.png": string(png) + "x", "a.txt": "static", "A-100.txt": "per row"})
	cfg.Markdown, cfg.Layout, cfg.Attachments = "b.md", "l.html", []string{"a.txt", "{{.invoice}}.txt"}
	r := newRenderer(t, cfg)
	want := len(encodePart("a.txt", "text/plain; charset=utf-8", "", "attachment", []byte("static"))) +
		len(r.layoutSplit.embeds[0].part)
	if got := r.StaticSize(); got != int64(want) {
		t.Errorf("StaticSize: got %d, want %d", got, want)
	}
	if _, err := r.Render(zoe()); err != nil {
		t.Fatal(err)
	}
	if got := r.StaticSize(); got != int64(want) {
		t.Errorf("StaticSize after a message: got %d, want %d", got, want)
	}
	if got := newRenderer(t, baseConfig()).StaticSize(); got == 0 {
		t.Errorf("StaticSize of the newsletter: got 0, want its attachment's size")
	}
}

// BenchmarkRenderBigAttachment renders the newsletter with one 30 MB
// attachment, the same for every row, one message at a time.
func BenchmarkRenderBigAttachment(b *testing.B) {
	cfg, _ := bigCampaign(b, 30<<20)
	cfg.MessageID = nil
	r := newRenderer(b, cfg)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		rc := zoe()
		rc.Email = "user" + strconv.Itoa(i) + "@example.org"
		if _, err := r.Render(rc); err != nil {
			b.Fatal(err)
		}
	}
}
