package render

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxFileSize bounds one attachment or image: a mail relay refuses far
// smaller messages, and a device or a huge file must not exhaust memory.
const maxFileSize = 32 << 20

// fileData is an attachment or an inline image, encoded once as its whole
// MIME part and shared, read-only, by every message that carries it: a
// static attachment or a cached image for the Renderer's life, any other
// file for one message.
type fileData struct {
	// Name is the file name shown to the recipient (the path's base name).
	Name string
	// Type is the MIME type from the extension, or application/octet-stream.
	Type string
	// CID is the Content-ID (without brackets) when the file is an inline image.
	CID string
	// part is the file's MIME part as it goes into the message (encodePart).
	part []byte
}

// checkLocal refuses paths that are absolute, empty or contain a ".."
// element, before os.Root refuses symlinks that leave the folder: the
// campaign's own files must be named plainly relative to its folder.
func checkLocal(p string) error {
	if p == "" {
		return errors.New("empty path")
	}
	if strings.ContainsRune(p, 0) {
		return fmt.Errorf("path %q contains NUL", p)
	}
	if filepath.IsAbs(p) || path.IsAbs(p) || strings.HasPrefix(p, `\`) {
		return fmt.Errorf("path %q is absolute; use a path inside the campaign folder", p)
	}
	for _, el := range strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' }) {
		if el == ".." {
			return fmt.Errorf("path %q leaves the campaign folder", p)
		}
	}
	if !filepath.IsLocal(p) {
		return fmt.Errorf("path %q is not inside the campaign folder", p)
	}
	return nil
}

// readFile reads a regular file inside the campaign folder through os.Root,
// which also refuses symlinks that point outside it.
func (r *Renderer) readFile(p string) ([]byte, error) {
	if err := checkLocal(p); err != nil {
		return nil, err
	}
	// Stat first: opening a FIFO would block the whole run.
	if st, err := r.root.Stat(filepath.FromSlash(p)); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = fmt.Errorf("%s: %w", p, pe.Err) // no "statat": users never called it
		}
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", p)
	}
	f, err := r.root.Open(filepath.FromSlash(p))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", p)
	}
	if st.Size() > maxFileSize {
		return nil, fmt.Errorf("%s: %d bytes exceeds the limit of %d", p, st.Size(), maxFileSize)
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return data, nil
}

// loadFile reads p and describes it as a file part, its part not yet
// encoded; data is its contents.
func (r *Renderer) loadFile(p string) (f *fileData, data []byte, err error) {
	data, err = r.readFile(p)
	if err != nil {
		return nil, nil, err
	}
	name := path.Base(filepath.ToSlash(p))
	if !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl) {
		return nil, nil, fmt.Errorf("%q: file name must be UTF-8 without control characters", p)
	}
	if looksEncoded(name) {
		// The name goes into quoted parameters, where Python's email
		// decodes encoded-words all the same.
		return nil, nil, fmt.Errorf("%q: file name looks like an RFC 2047 encoded-word (=?...?=), which mail readers would decode; rename the file", p)
	}
	return &fileData{Name: name, Type: typeOf(name)}, data, nil
}

// attachment reads the attachment p and encodes its part.
func (r *Renderer) attachment(p string) (*fileData, error) {
	f, data, err := r.loadFile(p)
	if err != nil {
		return nil, err
	}
	f.part = encodePart(f.Name, f.Type, "", "attachment", data)
	return f, nil
}

func typeOf(name string) string {
	if t := mime.TypeByExtension(strings.ToLower(path.Ext(name))); t != "" {
		return t
	}
	return "application/octet-stream"
}

// maxImages bounds the image cache: an <img src> built from a CSV value
// names a different file per row, and a cache of every one of them would
// grow with the list.
const maxImages = 256

// image returns the inline image at p, reading and encoding it on first
// use only; the cache is shared by all goroutines rendering with r. Only images are
// embedded: a src built from a CSV value must not turn the recipient list
// or a key file of the campaign folder into an inline part.
func (r *Renderer) image(p string) (*fileData, error) {
	r.imgMu.RLock()
	img, ok := r.images[p]
	r.imgMu.RUnlock()
	if ok {
		return img, nil
	}
	img, data, err := r.loadFile(p)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(img.Type, "image/") || !strings.HasPrefix(http.DetectContentType(data), "image/") &&
		!strings.HasPrefix(img.Type, "image/svg") {
		return nil, fmt.Errorf("%s: not an image (%s)", p, img.Type)
	}
	sum := sha256.Sum256(data)
	img.CID = cidName(img.Name) + "." + hex.EncodeToString(sum[:6]) + "@" + r.domain
	img.part = encodePart(img.Name, img.Type, img.CID, "inline", data)

	r.imgMu.Lock()
	defer r.imgMu.Unlock()
	if prev, ok := r.images[p]; ok {
		return prev, nil // another goroutine won the race; keep one CID
	}
	if len(r.images) < maxImages {
		r.images[p] = img
	}
	return img, nil
}

// cidName keeps the readable part of a file name that is safe in a
// Content-ID (RFC 2392: an RFC 5322 msg-id, dot-atom characters).
func cidName(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			b.WriteByte(c)
		}
	}
	s := strings.Trim(b.String(), ".")
	if s == "" {
		return "img"
	}
	return s
}

// embedImages rewrites every local <img src> in doc to a cid: reference and
// appends the images to used (once each). Remote (http, https), cid: and
// data: sources, and any other URL with a scheme, are left alone. file
// names the template that produced doc, for errors.
func (r *Renderer) embedImages(doc, file string, used []*fileData) (string, []*fileData, error) {
	var b strings.Builder
	last := 0
	for i := 0; ; {
		t, ok := nextTag(doc, i)
		if !ok {
			break
		}
		i = t.end
		if t.name != "img" || t.closing {
			continue
		}
		src, vs, ve, ok := t.attr("src")
		if !ok {
			continue
		}
		src = strings.TrimSpace(src)
		if src == "" || strings.HasPrefix(src, "//") || strings.HasPrefix(src, "#") {
			continue
		}
		u, err := url.Parse(src)
		if err != nil {
			return "", nil, fmt.Errorf("%s: image %q: %w", file, src, err)
		}
		if u.Scheme != "" || u.Host != "" {
			continue
		}
		if err := checkLocal(u.Path); err != nil {
			return "", nil, fmt.Errorf("%s: image %q: %w", file, src, err)
		}
		img, err := r.image(path.Clean(u.Path))
		if err != nil {
			return "", nil, fmt.Errorf("%s: image %q: %w", file, src, err)
		}
		if b.Cap() == 0 {
			b.Grow(len(doc) + 64)
		}
		b.WriteString(doc[last : t.attrsAt+vs])
		b.WriteString(`"cid:`)
		b.WriteString(img.CID)
		b.WriteByte('"')
		last = t.attrsAt + ve
		if !containsFile(used, img) {
			used = append(used, img)
		}
	}
	if last == 0 {
		return doc, used, nil
	}
	b.WriteString(doc[last:])
	return b.String(), used, nil
}

// containsFile reports whether list holds f, or an image with its
// Content-ID (the same bytes under the same name from another folder):
// one message must not carry two parts with one Content-ID.
func containsFile(list []*fileData, f *fileData) bool {
	for _, g := range list {
		if g == f || (f.CID != "" && g.CID == f.CID) {
			return true
		}
	}
	return false
}
