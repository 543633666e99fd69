package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// manifest is the last object of a set of files: its presence says the
// set is complete, and it lists the files with their hashes.
type manifest struct {
	Files map[string]string `json:"files"` // slash path -> sha256
}

// FilesKey is the content key of files (slash paths relative to root):
// a hash over their names and contents. Any change to any file, an
// attachment included, gives a new key.
func FilesKey(root string, names []string) (string, error) {
	names = slices.Sorted(slices.Values(names))
	h := sha256.New()
	r, err := os.OpenRoot(root)
	if err != nil {
		return "", err
	}
	defer r.Close()
	for _, name := range names {
		f, err := r.Open(filepath.FromSlash(name))
		if err != nil {
			return "", err
		}
		n, err := io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		fmt.Fprintf(h, "\x00%s\x00%d\x00", name, n)
	}
	return hex.EncodeToString(h.Sum(nil))[:32], nil
}

// PutFiles stores files (slash paths relative to root) under key, unless
// a complete set is there already. The manifest goes last, so a
// coordinator that dies halfway leaves no set a worker would use.
func (cn *Conn) PutFiles(ctx context.Context, key, root string, names []string) error {
	if _, err := cn.files.GetInfo(ctx, key+"/manifest"); err == nil {
		return nil
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	m := manifest{Files: map[string]string{}}
	for _, name := range names {
		f, err := r.Open(filepath.FromSlash(name))
		if err != nil {
			return err
		}
		info, err := cn.files.Put(ctx, jetstream.ObjectMeta{Name: key + "/f/" + name}, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("publish %s: %w", name, err)
		}
		m.Files[name] = info.Digest
	}
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if _, err := cn.files.PutBytes(ctx, key+"/manifest", data); err != nil {
		return fmt.Errorf("publish the file list: %w", err)
	}
	return nil
}

// GetFiles writes the set of files stored under key into dir, which it
// creates. A name that would leave dir is refused.
func (cn *Conn) GetFiles(ctx context.Context, key, dir string) error {
	data, err := cn.files.GetBytes(ctx, key+"/manifest")
	if err != nil {
		return fmt.Errorf("campaign files %s: %w", key, err)
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("campaign files %s: %w", key, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name := range m.Files {
		if !filepath.IsLocal(filepath.FromSlash(name)) || path.Clean(name) != name {
			return fmt.Errorf("campaign files %s: %q leaves the campaign folder", key, name)
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		if err := cn.files.GetFile(ctx, key+"/f/"+name, dst); err != nil {
			return fmt.Errorf("campaign file %s: %w", name, err)
		}
	}
	return nil
}

// ErrNoFiles is matched when a worker asks for files nobody published.
var ErrNoFiles = jetstream.ErrObjectNotFound
