package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/internal/transport/ice"
)

// checkICE reports, for the servers of --turn, whether each answers (a
// STUN server's binding, with this side's mapped address; a TURN server's
// allocation with the credentials, never printed), then the candidates an
// ICE agent gathers with them all: host, server-reflexive, relayed.
func (d *doctor) checkICE(ctx context.Context, servers []nearnet.ICEServer) {
	cfg := ice.Config{}
	for _, s := range servers {
		cfg.Servers = append(cfg.Servers, ice.Server(s))
	}
	results, err := ice.Probe(ctx, cfg, d.wait)
	if err != nil {
		d.reportICE("servers", "", false, err.Error(), "")
		return
	}
	for _, r := range results {
		check := "stun"
		if r.TURN {
			check = "turn"
		}
		if r.Err != nil {
			d.reportICE(check, r.URL, false, strings.TrimPrefix(r.Err.Error(), "nearnet: ICE server "+r.URL+": "), iceAdvice(r, d.wait))
			continue
		}
		detail := fmt.Sprintf("answered over %s in %v; this side is %s to it", r.Via, r.RTT.Round(time.Millisecond), r.Mapped)
		if r.TURN {
			detail += fmt.Sprintf("; allocated relayed address %s (released)", r.Relayed)
		}
		d.reportICE(check, r.URL, true, detail, "")
	}

	// What is gathered by then: a STUN server that does not answer would
	// cost pion's 5 s.
	gctx, cancel := context.WithTimeout(ctx, 2*d.wait)
	defer cancel()
	cfg.CheckTimeout = time.Second
	a, err := ice.NewAgent(cfg)
	if err != nil {
		d.reportICE("candidates", "", false, err.Error(), "")
		return
	}
	defer a.Close()
	desc, err := a.Gather(gctx)
	if err != nil {
		d.reportICE("candidates", "", false, err.Error(), "")
		return
	}
	byType := map[string][]string{}
	for _, s := range desc.Candidates {
		c, err := ice.ParseCandidate(s)
		if err != nil {
			continue
		}
		byType[c.Type] = append(byType[c.Type], c.Network+" "+c.Addr.String())
	}
	var parts []string
	for _, typ := range []string{"host", "srflx", "relay"} {
		if len(byType[typ]) > 0 {
			parts = append(parts, fmt.Sprintf("%s [%s]", typ, strings.Join(byType[typ], " ")))
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "none")
	}
	beyond := len(byType["srflx"])+len(byType["relay"]) > 0
	d.reportICE("candidates", "", beyond, strings.Join(parts, ", "),
		"no server-reflexive or relayed candidate: sessions cannot leave the LAN; see the failed stun and turn checks above")
}

func (d *doctor) reportICE(check, server string, ok bool, detail, advice string) {
	d.checks++
	if !ok {
		d.failed++
	} else {
		advice = ""
	}
	d.out.print("", &checkEvent{head: head{Event: "check"}, Interface: "ice", Check: check, Server: server, OK: ok, Detail: detail, Advice: advice})
}

// iceAdvice says what to do about a server that failed.
func iceAdvice(r ice.Result, wait time.Duration) string {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	switch {
	case errors.Is(r.Err, ice.ErrUnauthorized):
		return "the TURN server refused the username and password: check the file of --turn-credentials (and, for time-limited credentials, that they have not expired)"
	case errors.Is(r.Err, ice.ErrNoAnswer):
		return fmt.Sprintf("nothing answered within %v: check the host and port, and that no firewall drops %s to it (a network that blocks UDP needs turn:HOST:PORT?transport=tcp or turns:)", wait, strings.ToUpper(r.Via))
	case errors.Is(r.Err, syscall.ECONNREFUSED):
		return "nothing listens on that port: check the port (3478 for turn:, 5349 for turns:) and that the server runs"
	case errors.As(r.Err, &he):
		return "the server's certificate is not for this host name: use the name the certificate names in the URL"
	case errors.As(r.Err, &cv) || errors.As(r.Err, &ua):
		return "the server's certificate does not verify against the system's roots (SSL_CERT_FILE names other roots)"
	}
	var dnsErr *net.DNSError
	if errors.As(r.Err, &dnsErr) {
		return "the server's host name does not resolve: check the URL"
	}
	return ""
}
