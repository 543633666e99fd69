// Package journal is the crash-safe, append-only record of a send run: one
// JSON line per recipient event, fsynced before it counts, so that a rerun
// after a crash, Ctrl-C or kill -9 sends to everyone not yet sent and to
// nobody twice (principle 11 of the project's mail-sending principles).
//
// The file starts with a "begin" record (campaign, fingerprint, format
// version); each later run that records something appends a "run" record;
// every other line is an Entry. The last entry of a recipient, keyed by
// the caller's Key of the address (campaign.AddrKey), decides its Status.
//
// A send run uses it like this:
//
//  1. Open locks the journal (flock, so a second run gets ErrLocked),
//     loads the last status of every recipient (an intent without an
//     outcome becomes Unknown) and repairs a line torn by a crash, cutting
//     the zeros a crash leaves after the data (see step 4).
//  2. The caller compares Journal.Began's Fingerprint with the current
//     campaign's and warns when the campaign changed.
//  3. For each recipient, Journal.Status says whether a previous run
//     already sent, failed or skipped it.
//  4. Before the SMTP transaction, Journal.Record writes the Sending
//     intent and returns once it is fsynced; concurrent workers share one
//     write and one fsync per batch (group commit, in Journal.writer).
//     That fsync bounds a send's rate, so Journal.grow writes zeros up to
//     a megabyte ahead of the data and fsyncs them once; each batch is
//     then written over the zeros (WriteAt) and made durable with
//     fdatasync, which has no file size or block map to flush and costs
//     about two thirds of an appending fsync.
//  5. After it, Journal.Record (or Journal.Queue, which does not wait)
//     writes the outcome: Sent, Failed, Deferred, Unknown or Skipped.
//     Between the server's reply and the fsync a crash leaves at most one
//     recipient per worker Unknown.
//  6. Journal.Counts gives the summary; Journal.Close flushes, fsyncs,
//     cuts the zeros (a cleanly closed journal is exactly its lines) and
//     unlocks.
//
// Readers do not take the lock: Read streams the entries (mailrun status),
// Latest builds a Report with each recipient's last entry (mailrun
// report), and ReadIndex finds recipients by Message-ID for the bounce
// processor, which records them with MarkBounced. All of them, and Open,
// read the file with scanner.scan, which ends the data at the first NUL
// byte: zeros are the tail written ahead by a running or crashed send,
// and the bytes before them on their line are a torn line. Data after the
// zeros is corruption, unless a running send wrote it while the reader
// was reading (scanner.zeros tells the two apart).
package journal
