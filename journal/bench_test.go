package journal

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

// benchWorkers is the send default the brief measures against: four
// connections, each waiting on its own records.
const benchWorkers = 4

// runWorkers splits n operations over workers goroutines.
func runWorkers(b *testing.B, workers, n int, op func(i int) error) {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if err := op(i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkRecord: durable records per second with concurrent writers,
// each waiting for its fsync; group commit shares one fsync among all
// waiters, so the rate grows with the writers (1 shows the bare fsync).
func BenchmarkRecord(b *testing.B) {
	for _, workers := range []int{1, benchWorkers, 8} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			j, err := Open(filepath.Join(b.TempDir(), "j"), Header{}, lower)
			if err != nil {
				b.Fatal(err)
			}
			defer j.Close()
			b.ResetTimer()
			runWorkers(b, workers, b.N, func(i int) error {
				return j.Record(Entry{Row: i, Email: fmt.Sprintf("r%d@example.org", i), Status: Sending, MessageID: "<x@acme.example>"})
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/float64(j.batches), "records/batch")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkMessage: messages per second as a send run journals them, a
// durable intent and a queued outcome per message.
func BenchmarkMessage(b *testing.B) {
	j, err := Open(filepath.Join(b.TempDir(), "j"), Header{}, lower)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	runWorkers(b, benchWorkers, b.N, func(i int) error {
		addr := fmt.Sprintf("r%d@example.org", i)
		if err := j.Record(Entry{Row: i, Email: addr, Status: Sending, MessageID: "<x@acme.example>"}); err != nil {
			return err
		}
		return j.Queue(Entry{Row: i, Email: addr, Status: Sent, MessageID: "<x@acme.example>",
			Reply: &Reply{Code: 250, Enhanced: "2.0.0", Text: "ok queued"}, Attempts: 1})
	})
	if err := j.Close(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*2)/float64(j.batches), "records/batch")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
