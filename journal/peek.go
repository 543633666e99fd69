package journal

import (
	"errors"
	"fmt"
	"hash/maphash"
	"os"
)

// Snapshot is a journal read without taking its lock: every recipient's
// last status, as Open would load it, and whether another run holds the
// journal now. It is what a send shows before it asks: how many were sent
// before, whether the campaign changed, whether a run is under way.
type Snapshot struct {
	// Began is the header the journal began with; Runs counts the runs
	// that recorded something after the first.
	Began Header
	Runs  int
	// InUse reports that a run held the journal's lock when it was read:
	// its Sending recipients are in flight rather than unknown.
	InUse bool
	j     *Journal
}

// Peek reads the journal at path as Open would (key as for Open), without
// locking it and without repairing a torn tail. A journal that does not
// exist is an error matching fs.ErrNotExist.
func Peek(path string, key Key) (*Snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	defer f.Close()
	s := &Snapshot{j: &Journal{path: path, addrKey: key, seed: maphash.MakeSeed(), state: make(map[uint64]uint8)}}
	// flock works on a descriptor opened for reading too; a lock taken
	// here is dropped at once, and never blocks.
	switch err := lock(f); {
	case errors.Is(err, errWouldBlock):
		s.InUse = true
	case err == nil:
		if err := unlock(f); err != nil {
			return nil, fmt.Errorf("journal %s: unlock: %w", path, err)
		}
	}
	sc := scanner{path: path}
	_, err = sc.scan(f, func(r *record) error {
		switch r.Type {
		case typeBegin:
			s.Began = r.header()
		case typeRun:
			s.Runs++
		default:
			s.j.apply(r.Entry.Email, r.Entry.Status)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Status returns the last status of the recipient addr; Sending means in
// flight when InUse, and unknown otherwise (a run died between intent and
// outcome).
func (s *Snapshot) Status(addr string) (Status, bool) { return s.j.Status(addr) }

// Counts counts recipients by their last status.
func (s *Snapshot) Counts() Summary { return s.j.Counts() }
