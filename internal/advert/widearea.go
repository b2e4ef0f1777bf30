package advert

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/nearnet/nearnet/discovery"
)

// RegisterWideArea registers name under each of types in cfg.Domain. A
// permanent failure (the key rejected, the update refused) is returned; a
// transient one goes to warn and the registration retries at every
// refresh.
func RegisterWideArea(ctx context.Context, cfg discovery.WideAreaConfig, name string, types []string, port int, txt map[string]string, warn func(error)) (*discovery.WideAreaRegistration, error) {
	var svcs []discovery.Service
	for _, typ := range types {
		svcs = append(svcs, discovery.Service{Instance: name, Type: typ, Port: port, TXT: txt})
	}
	r, err := discovery.RegisterWideArea(ctx, cfg, svcs...)
	if r == nil {
		return nil, fmt.Errorf("nearnet: register in %s: %w", cfg.Domain, err)
	}
	if err != nil {
		warn(err)
	}
	return r, nil
}

// Follow refreshes r at every path change until done is closed.
func Follow(r *discovery.WideAreaRegistration, done <-chan struct{}, changed func() <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case <-changed():
			r.Refresh()
		}
	}
}

// Browse browses each of types on the link (mDNS, with cfg) and, with
// wide non-nil, in its domain too, calling fn for every event until ctx is
// done or one browse fails; it returns the first error.
func Browse(ctx context.Context, cfg discovery.Config, wide *discovery.WideAreaConfig, types []string, fn func(discovery.Event)) error {
	var browsers []func(context.Context) error
	for _, typ := range types {
		browsers = append(browsers, func(ctx context.Context) error { return discovery.Browse(ctx, cfg, typ, fn) })
		if wide != nil {
			browsers = append(browsers, func(ctx context.Context) error {
				err := discovery.BrowseWideArea(ctx, *wide, typ, fn)
				if err != nil && !errors.Is(err, ctx.Err()) {
					err = fmt.Errorf("nearnet: browse %s: %w", wide.Domain, err)
				}
				return err
			})
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(browsers))
	for _, browse := range browsers {
		go func() { errs <- browse(ctx) }()
	}
	var err error
	for range browsers {
		if e := <-errs; err == nil {
			err = e
			cancel() // one browse failed: end the others
		}
	}
	return err
}

// ConfigField names the node Config field of a wide-area FieldError's
// field.
func ConfigField(field string) string {
	switch {
	case strings.HasPrefix(field, "WideAreaConfig.Domain"):
		return "Domain"
	case strings.HasPrefix(field, "WideAreaConfig.Server"), strings.HasPrefix(field, "WideAreaConfig.DNS server"):
		return "DNSServer"
	case strings.HasPrefix(field, "WideAreaConfig.Refresh"):
		return "DNSRefresh"
	}
	return "TSIGKey"
}

// WideTXT returns the TXT of the instance whose TXT has key=value (a peer
// ID) among those of types in wide's domain, as the server has it now:
// one poll of each type, and more every wide.Refresh until it is found or
// ctx is done. It returns nil when wide is nil or nothing was found.
func WideTXT(ctx context.Context, wide *discovery.WideAreaConfig, types []string, key, value string) map[string]string {
	if wide == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	found := make(chan map[string]string, 1)
	var wg sync.WaitGroup
	for _, typ := range types {
		wg.Go(func() {
			discovery.BrowseWideArea(ctx, *wide, typ, func(e discovery.Event) {
				if (e.Kind == discovery.Found || e.Kind == discovery.Updated) && e.Service.TXT[key] == value {
					select {
					case found <- e.Service.TXT:
						cancel()
					default:
					}
				}
			})
		})
	}
	wg.Wait()
	select {
	case txt := <-found:
		return txt
	default:
		return nil
	}
}
