package nearnet

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nearnet/nearnet/discovery"
)

// Wide-area discovery (Config.Domain): the node registers in a unicast DNS
// domain and browses it, beside mDNS on the link. The discovery package
// does the DNS-SD; this file is the node's use of it.

// wideAreaConfig is the discovery configuration for Config.Domain.
func (n *Node) wideAreaConfig() discovery.WideAreaConfig {
	cfg := discovery.WideAreaConfig{Domain: n.cfg.Domain, Server: n.cfg.DNSServer, Key: n.cfg.TSIGKey,
		Refresh: n.cfg.DNSRefresh, Interfaces: n.cfg.Interfaces, Logger: n.cfg.Logger}
	if cb := n.cfg.OnWideArea; cb != nil {
		cfg.OnRefresh = func(err error) { n.events.Queue(func() { cb(err) }) }
	}
	return cfg
}

// registerWideArea registers the node's instances (one per service type)
// in Config.Domain when a TSIG key is configured. A permanent failure (the
// key rejected, the update refused) is returned; a transient one is logged
// and the registration retries at every refresh. The registration follows
// address changes the path monitor sees.
func (n *Node) registerWideArea(ctx context.Context, name string, port int, txt map[string]string) error {
	if n.cfg.Domain == "" || n.cfg.TSIGKey.IsZero() {
		return nil
	}
	var svcs []discovery.Service
	for _, typ := range n.serviceTypes() {
		svcs = append(svcs, discovery.Service{Instance: name, Type: typ, Port: port, TXT: txt})
	}
	r, err := discovery.RegisterWideArea(ctx, n.wideAreaConfig(), svcs...)
	if r == nil {
		return fmt.Errorf("nearnet: register in %s: %w", n.cfg.Domain, err)
	}
	if err != nil {
		n.cfg.Logger.Warn("nearnet: wide-area registration failed; retrying at every refresh", "domain", n.cfg.Domain, "err", err)
		if cb := n.cfg.OnWideArea; cb != nil {
			n.events.Queue(func() { cb(err) })
		}
	}
	n.mu.Lock()
	if n.closed.Load() {
		n.mu.Unlock()
		r.Close()
		return ErrClosed
	}
	n.wide = r
	n.wg.Add(1) // under mu, with closed false: before Close's Wait
	n.mu.Unlock()
	go func() {
		defer n.wg.Done()
		for {
			select {
			case <-n.done:
				return
			case <-n.paths.Changed():
				r.Refresh()
			}
		}
	}()
	return nil
}

// closeWideArea removes the node's wide-area registration, if any.
func (n *Node) closeWideArea() error {
	n.mu.Lock()
	r := n.wide
	n.mu.Unlock()
	if r == nil {
		return nil
	}
	return r.Close()
}

// browsers returns a browse function per source of adverts for each
// service type: mDNS on the link and, with Config.Domain, the wide-area
// domain.
func (n *Node) browsers(types []string) []func(context.Context, func(discovery.Event)) error {
	var out []func(context.Context, func(discovery.Event)) error
	for _, typ := range types {
		out = append(out, func(ctx context.Context, fn func(discovery.Event)) error {
			return discovery.Browse(ctx, n.discoveryConfig(), typ, fn)
		})
		if n.cfg.Domain != "" {
			out = append(out, func(ctx context.Context, fn func(discovery.Event)) error {
				err := discovery.BrowseWideArea(ctx, n.wideAreaConfig(), typ, fn)
				if err != nil && !errors.Is(err, ctx.Err()) {
					err = fmt.Errorf("nearnet: browse %s: %w", n.cfg.Domain, err)
				}
				return err
			})
		}
	}
	return out
}

// isWideArea reports whether a was seen in a wide-area domain rather than
// on the link.
func (a Advert) isWideArea() bool { return a.Domain != "" && a.Domain != "local." }

// validateWideArea checks Domain, DNSServer, TSIGKey and DNSRefresh,
// naming the Config field in the error.
func validateWideArea(c *Config) error {
	err := discovery.WideAreaConfig{Domain: c.Domain, Server: c.DNSServer, Key: c.TSIGKey, Refresh: c.DNSRefresh}.Validate()
	var fe *discovery.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	field := "TSIGKey"
	switch {
	case strings.HasPrefix(fe.Field, "WideAreaConfig.Domain"):
		field = "Domain"
	case strings.HasPrefix(fe.Field, "WideAreaConfig.Server"), strings.HasPrefix(fe.Field, "WideAreaConfig.DNS server"):
		field = "DNSServer"
	case strings.HasPrefix(fe.Field, "WideAreaConfig.Refresh"):
		field = "DNSRefresh"
	}
	return &ConfigError{Field: "Config." + field, Value: fe.Value, Reason: fe.Reason}
}
