package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The names of mailrun's buckets and streams: fixed, so that every
// coordinator and worker on a NATS installation meets the others there.
const (
	claimsBucket  = "mailrun_claims"
	runsBucket    = "mailrun_runs"
	workersBucket = "mailrun_workers"
	filesBucket   = "mailrun_files"
	workStream    = "MAILRUN_WORK"
	workSubject   = "mailrun.work."
	workConsumer  = "workers"
)

// Environment variables a client reads its NATS login from: a password
// never goes in a URL or a flag, where shell history and process lists
// keep it.
const (
	UserEnv     = "MAILRUN_NATS_USER"
	PasswordEnv = "MAILRUN_NATS_PASSWORD"
	// CAEnv names a PEM file of the certificate authority a tls:// hub's
	// certificate is checked against, beside the system's.
	CAEnv = "MAILRUN_NATS_CA"
)

// DefaultUser is the user a hub with a password knows, and the one a
// client logs in as without UserEnv.
const DefaultUser = "mailrun"

// Options shapes a connection.
type Options struct {
	// Name is how this client shows in the server's connection list.
	Name string
	// AckWait is how long a batch may go without its worker acknowledging
	// it or reporting progress before it goes to another worker. The
	// workers share one consumer: a client that sets AckWait sets it for
	// all; zero keeps the consumer's, or 30 seconds for a new one.
	AckWait time.Duration
	// Replicas of every bucket and stream; zero means 3 when the server
	// belongs to a cluster of three or more, else 1.
	Replicas int
}

// Conn is a connection to the cluster with mailrun's buckets and streams
// opened (created on first use).
type Conn struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	claims   jetstream.KeyValue
	runs     jetstream.KeyValue
	workers  jetstream.KeyValue
	files    jetstream.ObjectStore
	work     jetstream.Consumer
	replicas int
	ackWait  time.Duration
}

// Open connects to url (one or more comma-separated nats:// or tls://
// addresses) and opens mailrun's buckets and streams. The client
// reconnects on its own for as long as the connection lives: a hub that
// restarts is met again, and writes in between fail, which the caller
// sees.
func Open(ctx context.Context, url string, o Options) (*Conn, error) {
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.Timeout(10 * time.Second),
		// The server's own errors arrive here; without a handler the
		// client prints them to stderr, passwords never among them.
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}),
	}
	if pw := os.Getenv(PasswordEnv); pw != "" {
		user := os.Getenv(UserEnv)
		if user == "" {
			user = DefaultUser
		}
		opts = append(opts, nats.UserInfo(user, pw))
	}
	if ca := os.Getenv(CAEnv); ca != "" {
		opts = append(opts, nats.RootCAs(ca))
	}
	for _, u := range strings.Split(url, ",") {
		if u = strings.TrimSpace(u); !strings.HasPrefix(u, "nats://") && !strings.HasPrefix(u, "tls://") {
			return nil, fmt.Errorf("cluster URL %q: want nats://HOST:PORT or tls://HOST:PORT, several joined by commas", u)
		}
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", url, err)
	}
	c := &Conn{nc: nc, replicas: o.Replicas, ackWait: o.AckWait}
	if err := c.setup(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// setup creates or opens every bucket and stream.
func (c *Conn) setup(ctx context.Context) error {
	js, err := jetstream.New(c.nc)
	if err != nil {
		return err
	}
	c.js = js
	if c.replicas <= 0 {
		c.replicas = 1
		if len(c.nc.Servers()) >= 3 {
			c.replicas = 3
		}
	}
	r := c.replicas
	if c.claims, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: claimsBucket, Description: "mailrun: one claim or outcome per campaign and recipient",
		Storage: jetstream.FileStorage, Replicas: r,
	}); err != nil {
		return fmt.Errorf("open bucket %s: %w", claimsBucket, err)
	}
	if c.runs, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: runsBucket, Description: "mailrun: what each campaign began with, and its batches",
		Storage: jetstream.FileStorage, Replicas: r,
	}); err != nil {
		return fmt.Errorf("open bucket %s: %w", runsBucket, err)
	}
	if c.workers, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: workersBucket, Description: "mailrun: live workers, renewed every heartbeat",
		// On disk, though it expires: a memory bucket is gone after a
		// hub restart, and with it every worker's share of the rate.
		Storage: jetstream.FileStorage, Replicas: r, TTL: presenceTTL,
	}); err != nil {
		return fmt.Errorf("open bucket %s: %w", workersBucket, err)
	}
	if c.files, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: filesBucket, Description: "mailrun: campaign files by content key",
		Storage: jetstream.FileStorage, Replicas: r,
	}); err != nil {
		return fmt.Errorf("open object store %s: %w", filesBucket, err)
	}
	if _, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: workStream, Description: "mailrun: batches of recipients to send",
		Subjects: []string{workSubject + ">"}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, Replicas: r, Duplicates: 2 * time.Minute,
	}); err != nil {
		return fmt.Errorf("open stream %s: %w", workStream, err)
	}
	if c.ackWait <= 0 {
		if cons, err := js.Consumer(ctx, workStream, workConsumer); err == nil {
			c.work, c.ackWait = cons, cons.CachedInfo().Config.AckWait
			return nil
		}
		c.ackWait = 30 * time.Second
	}
	if c.work, err = js.CreateOrUpdateConsumer(ctx, workStream, jetstream.ConsumerConfig{
		Durable: workConsumer, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: c.ackWait, MaxDeliver: -1, MaxAckPending: 10000,
		FilterSubject: workSubject + ">",
	}); err != nil {
		return fmt.Errorf("open consumer %s: %w", workConsumer, err)
	}
	return nil
}

// Replicas is how many copies the cluster keeps of every write.
func (c *Conn) Replicas() int { return c.replicas }

// AckWait is how long a batch may go without a word from its worker.
func (c *Conn) AckWait() time.Duration { return c.ackWait }

// Connected reports whether the connection is up now.
func (c *Conn) Connected() bool { return c.nc.IsConnected() }

// Close drains nothing and closes the connection.
func (c *Conn) Close() { c.nc.Close() }

// ErrTaken is returned by Claim when another claim or an outcome holds the
// recipient.
var ErrTaken = errors.New("recipient already claimed")
