package cli

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nearnet/nearnet"
)

// The events commands print. With --json each is one JSON object per line
// whose "event" field names it. The fields are a contract that scripts
// (and internal/e2e) rely on: those listed are always present for their
// event, empty when unknown, except those in brackets, which appear only
// when they apply. Without --json each event is one readable line, in
// which text from the network (names, messages, TXT) has control
// characters escaped so that a peer cannot write to the terminal.
//
//	ready         name, peer, port, addr, fingerprint ("" with --insecure)
//	found, updated, lost
//	              name, peer, port, host, addrs, txt, interface
//	connected     name, peer, addr, via ("dialed" or "accepted"), path ("lan",
//	              or beyond the LAN "direct" or "relayed")
//	disconnected  name, peer, addr, [reason] (when it was not a clean close),
//	              [undelivered] (the connection was lost and not resumed:
//	              the texts of the messages sent to the peer that it never
//	              acknowledged, in order; send them again if they matter)
//	inviable      name, peer, [reason] (traffic to the peer stopped getting
//	              through: keepalives unanswered, the link or address went,
//	              or the transport broke; the connection stays open and
//	              lines typed meanwhile are kept and sent when it resumes)
//	viable        name, peer (traffic gets through again)
//	reconnected   name, peer, addr (the session resumed on a new transport
//	              connection, to or from addr; nothing was lost or repeated)
//	message       name, peer, text, [base64] (the message exactly, when it
//	              is not valid UTF-8 and text had to replace bytes)
//	datagram      name, peer, text, [base64] (a best-effort datagram received)
//	stream        name, peer, stream, bytes, [reason] (listen: a stream the
//	              peer opened ended; stream is its name, bytes what it carried)
//	rejected      reason, [addr, stage] (an incoming peer refused in its
//	              handshake), [target] (a peer this node dialed)
//	error         reason (the demo: a step failed)
//	proxy         proxy, latency_ms, error (proxy-rank: one proxy measured;
//	              latency_ms 0 for a failure, error "" for a usable proxy)
//
// group and chat --group (group.go) print ready with group (the group's
// name), and:
//
//	joined        peer, name, fingerprint, addrs (a member joined)
//	left          peer, name, [reason] (a member left; reason when it was
//	              lost rather than said goodbye)
//	message       from (the sender, as its signature proves), peer (the
//	              same), name, seq (the sender's number), [to] (the
//	              members it was sent to, when not all), text, [base64]
//	slow, forged, gap
//	              peer, name, [via], reason (a neighbour dropped for lagging;
//	              a neighbour that forwarded a frame signed by another than
//	              its sender; messages of peer given up)
//
// send and receive add file events (fileEvent in transfer.go), each with
// name (the file's '/'-separated name), bytes (its size) and peer, plus
// from (receive: the sender's instance name) or to (send: the receiver's):
//
//	waiting       (send: the offer is out; the receiver has not answered yet,
//	              it may be asking its user)
//	offer         [exists] (receive: an offer arrived; true if the name is taken)
//	progress      total, resumed; bytes is the bytes done (at most every
//	              250 ms per file, and the final one)
//	received      sha256, path, resumed, [offered] (receive: verified and
//	              in place; name is the name saved under, offered the name
//	              offered when that one was taken)
//	sent          sha256, resumed (send: the receiver verified it)
//	rejected      reason (the receiver declined the offer)
//	failed        reason, [path] (the transfer broke off or did not verify;
//	              path: the partial file receive keeps for a resume)
//	pruned        path, reason (receive: a partial file deleted to keep
//	              within --max-partials, --max-partial-mib, --partial-age)
//	summary       files, sent, rejected, failed, bytes (send, at the end)
//
// peer is the 32-hex-digit peer ID, "" for a service that is not a nearnet
// peer; addrs are IP addresses without the port; txt is an object. The
// demo adds "node" (which of its peers saw the event) and "ms"
// (milliseconds since it started) to every event, and its own "peers" and
// "demo" events; keygen and id print "key" and "id".
type event interface {
	hdr() *head
	text() string
}

// head is the part every event shares.
type head struct {
	Event string   `json:"event"`
	Node  string   `json:"node,omitempty"` // demo only
	MS    *float64 `json:"ms,omitempty"`   // demo only
}

func (h *head) hdr() *head { return h }

type readyEvent struct {
	head
	Name        string `json:"name"`
	Peer        string `json:"peer"`
	Port        int    `json:"port"`
	Addr        string `json:"addr"`
	Fingerprint string `json:"fingerprint"` // "" with --insecure

	// Reach lists host:port forms a peer can dial (chat --to), when Addr
	// is a wildcard address that no peer can.
	Reach []string `json:"reach,omitempty"`
}

func newReady(n *nearnet.Node, insecure bool) *readyEvent {
	e := &readyEvent{head: head{Event: "ready"}, Name: n.Name(), Peer: n.ID().String()}
	switch a := n.Addr().(type) {
	case *net.TCPAddr:
		e.Port, e.Addr = a.Port, a.String()
	case *net.UDPAddr: // --transport quic
		e.Port, e.Addr = a.Port, a.String()
	}
	if ap, err := netip.ParseAddrPort(e.Addr); err == nil && ap.Addr().IsUnspecified() {
		e.Reach = reachable(ap.Addr().Is4(), e.Port)
	}
	if !insecure {
		e.Fingerprint = n.Fingerprint().String()
	}
	return e
}

func (e *readyEvent) text() string {
	s := fmt.Sprintf("listening on %s as %s, peer %s", e.Addr, clean(e.Name), e.Peer)
	if len(e.Reach) > 0 {
		s += "; reach it as " + strings.Join(e.Reach, ", ")
	}
	return s
}

// reachable lists the addresses of this host's interfaces that are up, as
// host:port for port: IPv4 first, then IPv6, then IPv6 link-local (with
// its zone), loopback last; at most eight. only4 keeps IPv4 ones (a
// listener on 0.0.0.0).
func reachable(only4 bool, port int) []string {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var by [4][]string // the order above
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, _ := ifi.Addrs()
		for _, a := range addrs {
			pfx, err := netip.ParsePrefix(a.String())
			if err != nil || only4 && !pfx.Addr().Is4() {
				continue
			}
			ip := pfx.Addr()
			if ip.Is6() && ip.IsLinkLocalUnicast() {
				ip = ip.WithZone(ifi.Name)
			}
			rank := 0
			switch {
			case ip.IsLoopback():
				rank = 3
			case ip.IsLinkLocalUnicast():
				rank = 2
			case ip.Is6():
				rank = 1
			}
			by[rank] = append(by[rank], netip.AddrPortFrom(ip, uint16(port)).String())
		}
	}
	out := slices.Concat(by[:]...)
	return out[:min(len(out), 8)]
}

type browseEvent struct {
	head
	Name      string            `json:"name"`
	Peer      string            `json:"peer"`
	Port      int               `json:"port"`
	Host      string            `json:"host"`
	Addrs     []string          `json:"addrs"`
	TXT       map[string]string `json:"txt"`
	Interface string            `json:"interface"`
	Domain    string            `json:"domain"` // "local." on the link, else the wide-area domain

	showTXT bool // in the readable line (browse)
}

func newBrowseEvent(be nearnet.BrowseEvent) *browseEvent {
	e := &browseEvent{
		head: head{Event: be.Kind.String()}, Name: be.Name, Port: be.Port, Host: be.Host,
		Addrs: []string{}, TXT: be.TXT, Interface: be.Interface, Domain: be.Domain,
	}
	if !be.ID.IsZero() {
		e.Peer = be.ID.String()
	}
	for _, a := range be.Addrs {
		e.Addrs = append(e.Addrs, a.String())
	}
	if e.TXT == nil {
		e.TXT = map[string]string{}
	}
	return e
}

func (e *browseEvent) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", e.Event, peerLabel(e.Name, e.Peer))
	if e.Peer == "" {
		b.WriteString(" (not a nearnet peer)")
	}
	if e.Domain != "" && e.Domain != "local." {
		b.WriteString(" in " + clean(e.Domain))
	}
	if e.Event != "lost" {
		if len(e.Addrs) == 0 {
			fmt.Fprintf(&b, " at port %d (no address)", e.Port)
		}
		for i, a := range e.Addrs {
			sep := ", "
			if i == 0 {
				sep = " at "
			}
			b.WriteString(sep + net.JoinHostPort(a, strconv.Itoa(e.Port)))
		}
		if e.showTXT && len(e.TXT) > 0 {
			keys := make([]string, 0, len(e.TXT))
			for k := range e.TXT {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			b.WriteString(" txt")
			for _, k := range keys {
				b.WriteString(" " + clean(k) + "=" + clean(e.TXT[k]))
			}
		}
	}
	return b.String()
}

type connEvent struct {
	head
	Name        string   `json:"name"`
	Peer        string   `json:"peer"`
	Addr        string   `json:"addr"`
	Via         string   `json:"via,omitempty"`         // connected: "dialed" or "accepted"
	Path        string   `json:"path,omitempty"`        // connected: "lan", "direct" or "relayed"
	Reason      string   `json:"reason,omitempty"`      // disconnected: why, unless it was a clean close
	Undelivered []string `json:"undelivered,omitempty"` // disconnected: messages the peer never acknowledged
}

// newConnEvent describes c; via is how it came for "connected", the
// reason it ended for "disconnected".
func newConnEvent(kind string, c *nearnet.Conn, via string) *connEvent {
	p := c.Peer()
	e := &connEvent{head: head{Event: kind}, Name: p.Name, Peer: p.ID.String()}
	if kind == "connected" {
		e.Via, e.Path = via, c.Path().Kind.String()
	} else {
		e.Reason = via
	}
	if p.Addr != nil {
		e.Addr = p.Addr.String()
	}
	return e
}

func (e *connEvent) text() string {
	if e.Event == "connected" {
		s := fmt.Sprintf("connected to %s at %s", peerLabel(e.Name, e.Peer), e.Addr)
		if e.Via != "" {
			s += " (" + e.Via + ")"
		}
		if e.Path != "" && e.Path != "lan" {
			s += " over a " + e.Path + " path beyond the LAN"
		}
		return s
	}
	s := "disconnected from " + peerLabel(e.Name, e.Peer)
	if e.Reason != "" {
		s += ": " + clean(e.Reason)
	}
	if n := len(e.Undelivered); n > 0 {
		// All of them: the user may want to send them again.
		q := make([]string, n)
		for i, m := range e.Undelivered {
			q[i] = strconv.Quote(m)
		}
		s += fmt.Sprintf("; %d not delivered: %s", n, clean(strings.Join(q, ", ")))
	}
	return s
}

// newDisconnected describes c's end; err is what ReceiveMessage returned
// (nil for a clean close). A lost session lists what was not delivered.
func newDisconnected(c *nearnet.Conn, err error) *connEvent {
	reason := ""
	if err != nil {
		reason = errText(err)
	}
	e := newConnEvent("disconnected", c, reason)
	var sl *nearnet.SessionLostError
	if errors.As(err, &sl) {
		e.Undelivered = make([]string, len(sl.Undelivered))
		for i, m := range sl.Undelivered {
			e.Undelivered[i] = string(m)
		}
	}
	return e
}

// viabilityEvent is inviable, viable, reconnected or path-unavailable
// (Config.OnViability).
type viabilityEvent struct {
	head
	Name   string `json:"name"`
	Peer   string `json:"peer"`
	Reason string `json:"reason,omitempty"` // inviable: why, when known; path-unavailable: why
	Addr   string `json:"addr,omitempty"`   // reconnected: the peer's address on the new connection
}

func newViabilityEvent(c *nearnet.Conn, ve nearnet.ViabilityEvent) *viabilityEvent {
	p := c.Peer()
	e := &viabilityEvent{head: head{Event: ve.Kind.String()}, Name: p.Name, Peer: p.ID.String()}
	switch {
	case ve.Kind == nearnet.PathUnavailable:
		e.Event = "path-unavailable"
		if ve.Err != nil {
			e.Reason = errText(ve.Err)
		}
	case ve.Kind == nearnet.Inviable && ve.Err != nil:
		e.Reason = errText(ve.Err)
	case ve.Kind == nearnet.Reconnected && p.Addr != nil:
		e.Addr = p.Addr.String()
	}
	return e
}

func (e *viabilityEvent) text() string {
	who := peerLabel(e.Name, e.Peer)
	switch e.Event {
	case "inviable":
		s := "connection to " + who + " inviable"
		if e.Reason != "" {
			s += ": " + clean(e.Reason)
		}
		return s + " (keeping what is sent until it resumes)"
	case "viable":
		return "connection to " + who + " viable again"
	case "path-unavailable":
		return "no path beyond the LAN for " + who + ": " + clean(e.Reason) + " (the connection keeps its path)"
	}
	s := "reconnected to " + who
	if e.Addr != "" {
		s += " at " + e.Addr
	}
	return s + " (session resumed, nothing lost)"
}

type messageEvent struct {
	head
	Name string `json:"name"`
	Peer string `json:"peer"`
	Text string `json:"text"` // invalid UTF-8 is replaced by U+FFFD

	// Base64 holds the message exactly (standard alphabet, padded) when
	// it is not valid UTF-8, so that binary payloads survive the JSON.
	Base64 string `json:"base64,omitempty"`
}

func newMessage(c *nearnet.Conn, m []byte) *messageEvent {
	p := c.Peer()
	e := &messageEvent{head: head{Event: "message"}, Name: p.Name, Peer: p.ID.String(), Text: string(m)}
	if !utf8.Valid(m) {
		e.Base64 = base64.StdEncoding.EncodeToString(m)
	}
	return e
}

// newDatagram is the event for a datagram c received: a message event in
// all but its name, and marked as a datagram in the readable line.
func newDatagram(c *nearnet.Conn, d []byte) *messageEvent {
	e := newMessage(c, d)
	e.Event = "datagram"
	return e
}

func (e *messageEvent) text() string {
	if e.Event == "datagram" {
		return fmt.Sprintf("<%s> (datagram) %s", clean(e.Name), clean(e.Text))
	}
	return fmt.Sprintf("<%s> %s", clean(e.Name), clean(e.Text))
}

// streamEvent reports a stream the peer opened, once it ended.
type streamEvent struct {
	head
	Name   string `json:"name"`
	Peer   string `json:"peer"`
	Stream string `json:"stream"`           // the stream's name
	Bytes  int64  `json:"bytes"`            // what the peer sent on it
	Reason string `json:"reason,omitempty"` // why it ended early
}

func newStreamEvent(c *nearnet.Conn, stream string, n int64, err error) *streamEvent {
	p := c.Peer()
	e := &streamEvent{head: head{Event: "stream"}, Name: p.Name, Peer: p.ID.String(), Stream: stream, Bytes: n}
	if err != nil {
		e.Reason = errText(err)
	}
	return e
}

func (e *streamEvent) text() string {
	s := fmt.Sprintf("<%s> stream %q: %d bytes", clean(e.Name), clean(e.Stream), e.Bytes)
	if e.Reason != "" {
		s += " (" + clean(e.Reason) + ")"
	}
	return s
}

type rejectedEvent struct {
	head
	Reason string `json:"reason"`
	Addr   string `json:"addr,omitempty"`   // incoming: the remote address
	Stage  string `json:"stage,omitempty"`  // incoming: the handshake stage that failed
	Target string `json:"target,omitempty"` // outgoing: the peer dialed (name, peer ID or host:port)
}

func (e *rejectedEvent) text() string {
	switch {
	case e.Target != "":
		return fmt.Sprintf("rejected connection to %s: %s", clean(e.Target), clean(e.Reason))
	case e.Addr != "":
		return fmt.Sprintf("rejected incoming %s: %s", e.Addr, clean(e.Reason))
	}
	return "rejected: " + clean(e.Reason)
}

// newRejectedOutgoing describes a connection to target that failed
// because one side refused the other.
func newRejectedOutgoing(target string, err error) *rejectedEvent {
	return &rejectedEvent{head: head{Event: "rejected"}, Reason: dialErrText(err), Target: target}
}

// errorEvent reports a step that failed but does not end the command.
type errorEvent struct {
	head
	Reason string `json:"reason"`
}

func (e *errorEvent) text() string { return "error: " + clean(e.Reason) }

// newRejectedIncoming describes an incoming peer refused during its
// handshake (Config.OnReject).
func newRejectedIncoming(remote net.Addr, err error) *rejectedEvent {
	e := &rejectedEvent{head: head{Event: "rejected"}, Reason: errText(err)}
	if remote != nil {
		e.Addr = remote.String()
	}
	if he, ok := err.(*nearnet.HandshakeError); ok {
		e.Reason, e.Stage = errText(he.Err), he.Stage
	}
	return e
}

// dialErrText is errText for an error of Connect, whose address the caller
// already names: a *HandshakeError is reduced to its stage and cause.
func dialErrText(err error) string {
	if he, ok := err.(*nearnet.HandshakeError); ok {
		return he.Stage + ": " + errText(he.Err)
	}
	return errText(err)
}

// errText is an error's message without the package prefixes that make
// sense in a log but not in an event.
func errText(err error) string {
	s := err.Error()
	for _, p := range []string{"nearnet: ", "security: "} {
		s = strings.TrimPrefix(s, p)
	}
	return s
}

// peerLabel is how a peer is named in readable lines: its name and the
// first digits of its ID.
func peerLabel(name, peer string) string {
	if name == "" {
		name = "(no name)"
	}
	if len(peer) < 8 {
		return strconv.Quote(name)
	}
	return fmt.Sprintf("%s (peer %s…)", clean(name), peer[:8])
}

// clean escapes what a terminal would interpret: control characters,
// invalid UTF-8, and line breaks (so one event stays one line).
func clean(s string) string {
	ok := true
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) && r != '\t' {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for i, w := 0, 0; i < len(s); i += w {
		r, n := utf8.DecodeRuneInString(s[i:])
		w = n
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsPrint(r) || r == '\t':
			b.WriteRune(r)
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
	}
	return b.String()
}

// printer writes events to one stream from any number of goroutines, one
// whole line at a time.
type printer struct {
	json  bool
	start time.Time // if set, each event carries the time since (demo)

	mu  sync.Mutex // guards w and err
	w   io.Writer
	err error // first write error; later events are dropped
}

func newPrinter(w io.Writer, asJSON bool) *printer { return &printer{w: w, json: asJSON} }

// print writes e, labelled with node if it is not empty (the demo).
func (p *printer) print(node string, e event) {
	h := e.hdr()
	h.Node = node
	// The time is taken under the lock so that lines are in time order.
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return
	}
	var elapsed time.Duration
	if !p.start.IsZero() {
		elapsed = time.Since(p.start)
		ms := float64(elapsed.Microseconds()) / 1000
		h.MS = &ms
	}
	var line []byte
	if p.json {
		var err error
		if line, err = json.Marshal(e); err != nil {
			line, _ = json.Marshal(map[string]string{"event": "error", "reason": err.Error()})
		}
	} else {
		var b strings.Builder
		if !p.start.IsZero() {
			fmt.Fprintf(&b, "%8.1fms  ", float64(elapsed.Microseconds())/1000)
		}
		if node != "" {
			b.WriteString(node + ": ")
		}
		b.WriteString(e.text())
		line = []byte(b.String())
	}
	_, p.err = p.w.Write(append(line, '\n'))
}

// line writes s as it is, for output that is not an event (keygen, id).
func (p *printer) line(s string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		_, p.err = io.WriteString(p.w, s+"\n")
	}
	return p.err
}
