package render

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/mail"
	"net/textproto"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// decoded is a message's header block as one reader decodes it: every
// field in order, its decoded value, and the display names and addresses
// of the address fields.
type decoded struct {
	Fields  [][2]string            // name, decoded value
	Addrs   map[string][][2]string // field -> (display name, address)
	Defects map[string][]string    // Python's defects, by field
	Errors  map[string]string      // fields the reader refused
}

// value returns the decoded value of the first field called name.
func (d *decoded) value(name string) (string, bool) {
	for _, f := range d.Fields {
		if strings.EqualFold(f[0], name) {
			return f[1], true
		}
	}
	return "", false
}

// decodeGo reads data with net/mail: address fields with its address
// parser, every field with mime.WordDecoder.DecodeHeader as well, the
// crudest reader, which decodes a word wherever it finds one.
func decodeGo(t testing.TB, data []byte) *decoded {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("net/mail: %v", err)
	}
	d := &decoded{Addrs: map[string][][2]string{}, Errors: map[string]string{}}
	dec := new(mime.WordDecoder)
	for _, name := range headerOrder(data) {
		for _, raw := range msg.Header[name] {
			v, err := dec.DecodeHeader(raw)
			if err != nil {
				d.Errors[name] = err.Error()
			}
			d.Fields = append(d.Fields, [2]string{name, v})
		}
		switch name {
		case "From", "To", "Cc", "Reply-To", "Sender":
			if msg.Header.Get(name) == "undisclosed-recipients:;" {
				continue
			}
			l, err := msg.Header.AddressList(name)
			if err != nil {
				d.Errors[name] = err.Error()
			}
			for _, a := range l {
				d.Addrs[name] = append(d.Addrs[name], [2]string{a.Name, a.Address})
			}
		}
	}
	return d
}

// headerOrder lists the distinct field names of data's header block in
// canonical form, in order of first appearance.
func headerOrder(data []byte) []string {
	head, _, _ := bytes.Cut(data, []byte("\r\n\r\n"))
	var names []string
	seen := map[string]bool{}
	for _, line := range strings.Split(string(head), "\r\n") {
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		name, _, _ := strings.Cut(line, ":")
		name = textproto.CanonicalMIMEHeaderKey(name)
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	return names
}

// pyDecode is run by python3 over a message on stdin: every field through
// the email package's policy.default, as a JSON decoded. With the argument
// "all", stdin is a JSON list of base64 messages and the output a list.
const pyDecode = `
import base64, email, email.policy, json, sys
def decode(data):
    m = email.message_from_bytes(data, policy=email.policy.default)
    out = {"Fields": [], "Addrs": {}, "Defects": {}, "Errors": {}}
    for name, raw in m.raw_items():
        try:
            v = m.policy.header_fetch_parse(name, raw)
        except Exception as e:
            out["Errors"][name] = repr(e)
            continue
        out["Fields"].append([name, str(v)])
        if hasattr(v, "addresses"):
            out["Addrs"][name] = [[a.display_name, a.addr_spec] for a in v.addresses]
        if v.defects:
            out["Defects"][name] = [repr(x) for x in v.defects]
    return out
if sys.argv[1:] == ["all"]:
    json.dump([decode(base64.b64decode(m)) for m in json.load(sys.stdin)], sys.stdout)
else:
    json.dump(decode(sys.stdin.buffer.read()), sys.stdout)
`

// python returns the python3 command, or skips the test without one; on
// CI (CI=true) a missing python3 fails it instead, so the half of the
// test that reads messages as Python does cannot silently go missing.
func python(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3 is required on CI: %v", err)
		}
		t.Skipf("python3 not found: %v", err)
	}
	return p
}

// decodePython reads data with Python's email package (policy.default).
func decodePython(t testing.TB, py string, data []byte) *decoded {
	t.Helper()
	cmd := exec.Command(py, "-c", pyDecode)
	cmd.Stdin = bytes.NewReader(data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, stderr.Bytes())
	}
	var d decoded
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatalf("python3 output: %v\n%s", err, out)
	}
	return &d
}

// decodePythonAll is decodePython for many messages, in one python3 run.
func decodePythonAll(t testing.TB, py string, msgs [][]byte) []*decoded {
	t.Helper()
	in, err := json.Marshal(msgs) // []byte as base64
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", pyDecode, "all")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, stderr.Bytes())
	}
	var d []*decoded
	if err := json.Unmarshal(out, &d); err != nil || len(d) != len(msgs) {
		t.Fatalf("python3 output (%d messages, want %d): %v\n%s", len(d), len(msgs), err, out)
	}
	return d
}

// checkNoBreaks fails when a decoded field holds CR, LF or NUL, or when
// the reader refused a field.
func checkNoBreaks(t testing.TB, reader string, d *decoded) {
	t.Helper()
	for name, e := range d.Errors {
		t.Errorf("%s refused %s: %s", reader, name, e)
	}
	for _, f := range d.Fields {
		if strings.ContainsAny(f[1], "\r\n\x00") {
			t.Errorf("%s: decoded %s holds CR, LF or NUL: %q", reader, f[0], f[1])
		}
	}
	for name, l := range d.Addrs {
		for _, a := range l {
			if strings.ContainsAny(a[0]+a[1], "\r\n\x00") {
				t.Errorf("%s: decoded %s address holds CR, LF or NUL: %q", reader, name, a)
			}
		}
	}
}

// checkNoLeadingBlank fails when a decoded field value starts with a
// blank: the sign of a header folded right after its colon, which
// Python's email keeps as part of an unstructured value.
func checkNoLeadingBlank(t testing.TB, reader string, d *decoded) {
	t.Helper()
	for _, f := range d.Fields {
		if strings.HasPrefix(f[1], " ") || strings.HasPrefix(f[1], "\t") {
			t.Errorf("%s: %s starts with a blank: %q", reader, f[0], f[1])
		}
	}
}

// checkHeaderLines checks the folding of data's header block (RFC 5322
// section 2.1.1 and 2.2.3): no line over 998 octets; no field whose first
// line ends at its colon; and no line over 78 octets that a blank could
// have cut, that is one holding more than one word after "Name: ". The
// DKIM-Signature is go-msgauth's, as it formats it, and not checked.
func checkHeaderLines(t testing.TB, data []byte) {
	t.Helper()
	head, _, _ := bytes.Cut(data, []byte("\r\n\r\n"))
	lines := strings.Split(string(head), "\r\n")
	for len(lines) > 0 && strings.HasPrefix(lines[0], "DKIM-Signature:") {
		lines = lines[1:]
		for len(lines) > 0 && strings.HasPrefix(lines[0], " ") {
			lines = lines[1:]
		}
	}
	for i, l := range lines {
		if len(l) > 998 {
			t.Errorf("header line %d of %d octets", i+1, len(l))
		}
		cont := l != "" && (l[0] == ' ' || l[0] == '\t')
		body := strings.TrimLeft(l, " \t")
		if !cont {
			name, rest, _ := strings.Cut(l, ":")
			if strings.TrimSpace(rest) == "" && i+1 < len(lines) && strings.HasPrefix(lines[i+1], " ") {
				t.Errorf("%s is folded right after its colon: %q", name, lines[i+1])
			}
			body = strings.TrimLeft(rest, " ")
		}
		if len(l) > 78 && strings.ContainsAny(body, " \t") {
			t.Errorf("header line %d of %d octets could be folded: %q", i+1, len(l), l)
		}
	}
}
