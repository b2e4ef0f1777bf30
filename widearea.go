package nearnet

import (
	"context"

	"github.com/nearnet/nearnet/discovery"
	"github.com/nearnet/nearnet/internal/advert"
)

// Wide-area discovery (Config.Domain): the node registers in a unicast DNS
// domain and browses it, beside mDNS on the link (internal/advert).

// wideAreaConfig is the discovery configuration for Config.Domain, or nil
// without one.
func (n *Node) wideAreaConfig() *discovery.WideAreaConfig {
	if n.cfg.Domain == "" {
		return nil
	}
	cfg := discovery.WideAreaConfig{Domain: n.cfg.Domain, Server: n.cfg.DNSServer, Key: n.cfg.TSIGKey,
		Refresh: n.cfg.DNSRefresh, Interfaces: n.cfg.Interfaces, Logger: n.cfg.Logger, OnRefresh: n.onWideArea}
	return &cfg
}

// onWideArea queues Config.OnWideArea with err, if set.
func (n *Node) onWideArea(err error) {
	if cb := n.cfg.OnWideArea; cb != nil {
		n.events.Queue(func() { cb(err) })
	}
}

// registerWideArea registers the node's instances in Config.Domain when a
// TSIG key is configured, following address changes the path monitor sees.
func (n *Node) registerWideArea(ctx context.Context, name string, port int, txt map[string]string) error {
	if n.cfg.Domain == "" || n.cfg.TSIGKey.IsZero() {
		return nil
	}
	r, err := advert.RegisterWideArea(ctx, *n.wideAreaConfig(), name, n.serviceTypes(), port, n.ice.Publish(ctx, txt), func(err error) {
		n.cfg.Logger.Warn("nearnet: wide-area registration failed; retrying at every refresh", "domain", n.cfg.Domain, "err", err)
		n.onWideArea(err)
	})
	if err != nil {
		return err
	}
	err = n.keep(func() error {
		n.wide = r
		n.ice.Republish(r.SetTXT)
		n.wg.Go(func() { advert.Follow(r, n.done, n.paths.Changed) }) // under mu, with closed false: before Close's Wait
		return nil
	})
	if err != nil {
		r.Close()
	}
	return err
}

// isWideArea reports whether a was seen in a wide-area domain rather than
// on the link.
func (a Advert) isWideArea() bool { return a.Domain != "" && a.Domain != "local." }

// validateWideArea checks Domain, DNSServer, TSIGKey and DNSRefresh,
// naming the Config field in the error.
func validateWideArea(c *Config) error {
	err := discovery.WideAreaConfig{Domain: c.Domain, Server: c.DNSServer, Key: c.TSIGKey, Refresh: c.DNSRefresh}.Validate()
	if fe, ok := errorsAs[*discovery.FieldError](err); ok {
		return &ConfigError{Field: "Config." + advert.ConfigField(fe.Field), Value: fe.Value, Reason: fe.Reason}
	}
	return err
}
