package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// HubConfig shapes an embedded hub.
type HubConfig struct {
	// Listen is the host:port clients connect to; "" means
	// 127.0.0.1:4222. Port 0 picks a free port (see Hub.URL).
	Listen string
	// StoreDir holds JetStream's files; it survives the hub, so a
	// restarted hub continues the campaigns it held.
	StoreDir string
	// User and Password, when set, are required of every client. The
	// caller takes the password from the environment, never a flag.
	User, Password string
	// TLS, when set, is the server's TLS configuration.
	TLS *tls.Config
	// Name is the server's name; "" means "mailrun-hub".
	Name string
}

// ErrExposed is returned by StartHub for a listen address other than
// loopback without both TLS and a password: the hub holds recipients'
// data and takes work from anyone who connects.
var ErrExposed = errors.New("a hub listening beyond loopback needs TLS and a password")

// Hub is a running embedded NATS server with JetStream.
type Hub struct {
	s   *server.Server
	url string
}

// StartHub starts an embedded NATS server with JetStream and waits until
// it accepts connections (at most 30 seconds). JetStream syncs every write
// to disk before acknowledging it (SyncAlways): with one server there is
// no replica to survive a power cut, so an acknowledged claim must be on
// disk.
func StartHub(cfg HubConfig) (*Hub, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:4222"
	}
	host, portText, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("listen %q: bad port", cfg.Listen)
	}
	if !loopback(host) && (cfg.TLS == nil || cfg.Password == "") {
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, ErrExposed)
	}
	if cfg.StoreDir == "" {
		return nil, errors.New("hub: no store folder")
	}
	if err := os.MkdirAll(cfg.StoreDir, 0o700); err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	if cfg.Name == "" {
		cfg.Name = "mailrun-hub"
	}
	opts := &server.Options{
		ServerName: cfg.Name,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		SyncAlways: true,
		NoSigs:     true,
		NoLog:      true,
		Username:   cfg.User,
		Password:   cfg.Password,
		TLSConfig:  cfg.TLS,
	}
	if port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("hub: not accepting connections on %s after 30s", cfg.Listen)
	}
	scheme := "nats"
	if cfg.TLS != nil {
		scheme = "tls"
	}
	addr := s.Addr().(*net.TCPAddr)
	return &Hub{s: s, url: fmt.Sprintf("%s://%s", scheme, net.JoinHostPort(host, strconv.Itoa(addr.Port)))}, nil
}

// URL is the address clients connect to.
func (h *Hub) URL() string { return h.url }

// Close stops the hub and waits for JetStream's files to be closed.
func (h *Hub) Close() {
	h.s.Shutdown()
	h.s.WaitForShutdown()
}

// loopback reports whether host is a loopback name or address. A leaf
// cannot import sender: this is the same rule as sender.IsLoopback.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
