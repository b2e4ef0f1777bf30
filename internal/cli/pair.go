package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/security"
)

const pairHelp = `pair makes two machines trust each other with a short code instead of a key
or a fingerprint copied between them. Run

    nearnet pair --identity ID --known-peers KNOWN

on one: it shows a six-digit code (and a QR code of it with this node's
fingerprint) and waits. On the other run

    nearnet pair CODE --identity ID --known-peers KNOWN

with the code shown: it finds the machine showing a code on the network (or
the one --to names: an instance name, peer ID or host:port), and the two
check the code with a PAKE (CPace) bound to their TLS session, so a machine
in between learns nothing and cannot pass. Both print the peer's name and
fingerprint, record it in --known-peers (replacing an entry for the same
identity), and exit 0 once both have. From then on chat, send, receive and
listen with the same --identity and --known-peers connect the two with no
code and no key.

A wrong code fails on both sides at once ("pairing code mismatch"); the side
that typed it exits 1, the side showing it waits for another try. The code
is accepted for --attempts tries and for --lifetime; then the showing side
exits 1 and a new code must be shown. The code is never advertised or sent:
the advertisement says only that this node is pairing.`

// runPair: see pairHelp.
func runPair(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("pair")
	fs.summary = pairHelp
	fs.positional = "CODE"
	var to string
	attempts := fs.Int("attempts", security.DefaultPairingAttempts, "accept the code for `N` tries, 1-10")
	lifetime := durationValue(security.DefaultPairingLifetime)
	fs.Var(&lifetime, "lifetime", "accept the code for `D`, at most 1h")
	fs.StringVar(&to, "to", "", "with CODE: pair with `TARGET` (instance name, peer ID or host:port) rather than the peer found showing a code")
	if err := fs.parse(e, args); err != nil {
		return helpOK(err)
	}
	switch {
	case len(fs.args) > 1:
		return fs.usageError("at most one CODE")
	case fs.g.identity == "" || fs.g.knownPeers == "":
		return fs.usageError("pair needs --identity PATH and --known-peers PATH: the identity the peer pins and the file that keeps the peer pinned here")
	case *attempts < 1 || *attempts > 10:
		return fs.usageError("--attempts must be 1 to 10")
	case lifetime <= 0 || time.Duration(lifetime) > time.Hour:
		return fs.usageError("--lifetime must be more than 0 and at most 1h")
	case to != "" && len(fs.args) == 0:
		return fs.usageError("--to goes with CODE: the side showing the code waits to be found")
	}
	opts := &nearnet.PairingOptions{MaxAttempts: *attempts, Lifetime: time.Duration(lifetime)}
	cfg, err := fs.pairingConfig("pair")
	if err != nil {
		return err
	}
	out := newPrinter(e.stdout, fs.g.json)
	if len(fs.args) == 1 {
		code, err := security.ParsePairingCode(fs.args[0])
		if err != nil {
			return fs.usageError(errText(err))
		}
		return pairAnswer(ctx, fs, cfg, out, code, to, opts)
	}
	return pairOffer(ctx, fs, cfg, out, opts)
}

// pairOffer shows a code and waits for the peer that types it.
func pairOffer(ctx context.Context, fs *flagSet, cfg *nearnet.Config, out *printer, opts *nearnet.PairingOptions) error {
	cfg.TXT = map[string]string{txtPair: "offer"}
	node, err := fs.newNode(cfg)
	if err != nil {
		return err
	}
	defer node.Close()
	if err := node.Listen(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	out.print("", newReady(node, false))
	opts.OnFailure = func(err error) { out.print("", newPairFailed("", err)) }
	p, err := node.OfferPairing(opts)
	if err != nil {
		return err
	}
	defer p.Close()
	showCode(out, node, p, opts.MaxAttempts)
	peer, err := p.Wait(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return errors.New("interrupted: nothing paired")
		}
		out.print("", newPairFailed("", err))
		return fmt.Errorf("nothing paired: %s", errText(err))
	}
	out.print("", newPairedEvent(peer, fs.g.knownPeers))
	waitPinned(ctx, node, peer.ID, 5*time.Second)
	return nil
}

// pairAnswer pairs with the peer showing code.
func pairAnswer(ctx context.Context, fs *flagSet, cfg *nearnet.Config, out *printer, code security.PairingCode, to string, opts *nearnet.PairingOptions) error {
	node, err := fs.newNode(cfg)
	if err != nil {
		return err
	}
	defer node.Close()
	p, err := node.AnswerPairing(code, opts)
	if err != nil {
		return err
	}
	defer p.Close()
	wctx, cancel := context.WithDeadline(ctx, p.Expires())
	defer cancel()
	var found *pairingPeers
	if to == "" {
		found = findPairingPeers(wctx, node, "offer")
	}
	var last error // the failure with the peer tried last
	for {
		target, label := to, to
		if found != nil {
			if target, label, err = found.next(wctx, last == nil); err != nil {
				switch {
				case last != nil:
					return last
				case ctx.Err() != nil:
					return errors.New("interrupted: nothing paired")
				}
				return errors.New("no peer showing a pairing code was found; is nearnet pair running there, on this network? (or name it with --to)")
			}
		}
		c, err := p.Connect(wctx, target)
		if err == nil {
			out.print("", newPairedEvent(c.Peer(), fs.g.knownPeers))
			// The peer has pinned this side (its hello came after); closing
			// tells it this side has too.
			c.Close()
			return nil
		}
		out.print("", newPairFailed(label, err))
		// A peer found by discovery that turns out not to be the one (it
		// has another code: another host answering under the name, or a
		// mistyped code) is passed over for the next one already found,
		// while the code has tries left; a peer named is final.
		last = fmt.Errorf("pairing with %s: %s", label, pairErrText(err))
		if found == nil || p.Err() != nil || ctx.Err() != nil {
			return last
		}
	}
}
