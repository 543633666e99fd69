// Package cluster is mailrun's state on NATS JetStream, for a campaign sent
// by more than one machine: what the local journal is to one machine, this
// is to many. It knows NATS and nothing of mail or of mailrun's other
// packages; mailing orchestrates the coordinator and the workers over it.
//
// What lives where (one bucket or stream each, created by Open):
//
//   - Claims (key-value bucket mailrun_claims): one key per campaign and
//     recipient address key. A worker claims a recipient with a create-only
//     write before its data goes out, and the outcome replaces the claim
//     (Claims.Claim, Claims.Settle). A key that exists means somebody has
//     the recipient, so a batch delivered twice cannot mail anyone twice; a
//     deferred recipient is claimed again by a compare-and-set on its
//     revision.
//   - Runs (key-value bucket mailrun_runs): per campaign, what the
//     coordinator began with (fingerprint, files, rate) and a marker per
//     batch, so a rerun of the coordinator never queues a batch twice, also
//     past the stream's duplicate window.
//   - Work (stream MAILRUN_WORK, work-queue retention, one durable pull
//     consumer shared by the workers): batches of recipients. A batch a
//     worker does not acknowledge within the ack wait goes to another; a
//     live worker reports progress so its batch is not taken from it.
//   - Files (object store mailrun_files): the campaign's files under their
//     content key, so that every worker renders from the same bytes.
//   - Workers (key-value bucket mailrun_workers, entries expire): the live
//     workers, so that send.rate is shared among them.
//
// Hub runs an embedded NATS server with JetStream for the small deployment;
// with a single server, writes are synced to disk before they are
// acknowledged. Against a NATS cluster of three or more servers, Open
// replicates every bucket and stream three times.
package cluster
