// Package natstest starts a cluster of three NATS servers with JetStream
// on loopback, as a team's own cluster would be, for the replicated
// (R3) tests of package cluster and the R3 line of make bench-cluster.
package natstest

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/mailrun/mailrun/internal/servertest"
)

// Start starts three clustered servers, each with its store in a folder
// of its own under root, and returns their client URLs joined with
// commas, as a user gives them to mailrun, and the servers, shut down in
// t.Cleanup. The servers keep nats-server's defaults (a write is
// acknowledged once two hold it, flushed to disk in the background)
// unless syncAlways. The cluster elects its JetStream leader after Start
// returns: a client retries its first requests.
func Start(t testing.TB, root string, syncAlways bool) (string, []*server.Server) {
	t.Helper()
	ports := servertest.FreePorts(t, 6)
	var routes, urls []string
	for i := range 3 {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[3+i]))
	}
	var servers []*server.Server
	for i := range 3 {
		name := fmt.Sprintf("s%d", i+1)
		s, err := server.NewServer(&server.Options{
			ServerName: name, Host: "127.0.0.1", Port: ports[i],
			JetStream: true, StoreDir: filepath.Join(root, name), SyncAlways: syncAlways, NoSigs: true, NoLog: true,
			Cluster: server.ClusterOpts{Name: "mailrun-test", Host: "127.0.0.1", Port: ports[3+i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		})
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		t.Cleanup(s.Shutdown)
		servers = append(servers, s)
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
	}
	for _, s := range servers {
		if !s.ReadyForConnections(30 * time.Second) {
			t.Fatal("a cluster server did not start within 30 s")
		}
	}
	return strings.Join(urls, ","), servers
}
