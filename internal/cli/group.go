package cli

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nearnet/nearnet"
	"github.com/nearnet/nearnet/group"
)

const groupHelp = `group joins the group NAME and prints its members as they join and leave,
and the messages sent to the group, each with its sender. Members find each
other over DNS-SD (the group's name is in their TXT record; nodes of other
groups are neither connected nor admitted) and through the --to HOST:PORT
seeds given, where multicast does not reach. It runs until interrupted.

Events: joined and left (peer, name; left has a reason when the member was
lost rather than said goodbye), message (from, peer, name, seq, text),
and slow, forged, gap (a neighbour dropped for lagging, a forwarded frame
whose signature did not match its sender, messages given up).

` + resumeHelp

const chatGroupHelp = `With --group NAME, chat joins the group NAME instead (see nearnet group -h):
each line of stdin is one message to every member, each message received is
printed with its sender, and --to HOST:PORT seeds the group. A line waits up
to --wait for another member (0: no limit). When stdin ends, chat leaves the
group once every neighbour has what was sent.`

// runGroup: see groupHelp.
func runGroup(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("group")
	fs.summary = groupHelp
	var seeds targetList
	name := fs.String("group", "", "the group's `NAME` (1 to 63 bytes)")
	fs.Var(&seeds, "to", "join through the member at `HOST:PORT` (repeatable)")
	if err := fs.parse(e, args); err != nil {
		return helpOK(err)
	}
	g, out, err := joinGroup(ctx, e, fs, *name, seeds)
	if err != nil {
		return err
	}
	gc, stop := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	go func() { printGroupMessages(gc, g, out); done <- struct{}{} }()
	go func() { printGroupEvents(gc, g, out); done <- struct{}{} }()
	<-ctx.Done()
	err = g.Close()
	stop()
	<-done
	<-done
	return err
}

// runGroupChat is chat --group: see chatGroupHelp.
func runGroupChat(ctx context.Context, e *env, fs *flagSet, name string, seeds []string, wait time.Duration) error {
	g, out, err := joinGroup(ctx, e, fs, name, seeds)
	if err != nil {
		return err
	}
	gc, stop := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	go func() { printGroupMessages(gc, g, out); done <- struct{}{} }()
	go func() { printGroupEvents(gc, g, out); done <- struct{}{} }()
	err = groupPump(ctx, g, e.stdin, wait)
	err = errors.Join(err, g.Close())
	stop()
	<-done
	<-done
	return err
}

func joinGroup(ctx context.Context, e *env, fs *flagSet, name string, seeds []string) (*group.Group, *printer, error) {
	if name == "" {
		return nil, nil, fs.usageError("--group NAME is required")
	}
	cfg, err := fs.config(true)
	if err != nil {
		return nil, nil, err
	}
	g, err := group.Join(ctx, &group.Config{Name: name, Node: cfg, Seeds: seeds})
	var ce *group.ConfigError
	if errors.As(err, &ce) && ce.Field == "Name" {
		return nil, nil, fs.usageError(fmt.Sprintf("invalid --group %q: %s", name, ce.Reason))
	}
	if err != nil {
		return nil, nil, err
	}
	out := newPrinter(e.stdout, fs.g.json)
	ready := newReady(g.Node(), fs.g.insecure)
	out.print("", &groupReady{readyEvent: *ready, Group: name})
	return g, out, nil
}

// groupPump sends each stdin line to the group.
func groupPump(ctx context.Context, g *group.Group, stdin io.Reader, wait time.Duration) error {
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 0, 64<<10), nearnet.DefaultMaxMessageSize/2)
	for sc.Scan() {
		if err := waitMember(ctx, g, wait); err != nil {
			return err
		}
		if err := g.Send(ctx, sc.Bytes()); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading stdin: %w", err)
	}
	return nil
}

// waitMember waits up to wait (0: no limit) for a member besides this one.
func waitMember(ctx context.Context, g *group.Group, wait time.Duration) error {
	var deadline time.Time
	if wait > 0 {
		deadline = time.Now().Add(wait)
	}
	for len(g.Members()) < 2 {
		if !deadline.IsZero() && time.Now().After(deadline) {
			return fmt.Errorf("no other member joined within --wait %v to send to", wait)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

func printGroupMessages(ctx context.Context, g *group.Group, out *printer) {
	for {
		m, err := g.Receive(ctx)
		if err != nil {
			return
		}
		name := ""
		for _, mb := range g.Members() {
			if mb.ID == m.From {
				name = mb.Name
			}
		}
		e := &groupMessage{head: head{Event: "message"}, From: m.From.String(), Peer: m.From.String(), Name: name,
			Seq: m.Seq, Text: string(m.Payload)}
		if !utf8.Valid(m.Payload) {
			e.Base64 = base64.StdEncoding.EncodeToString(m.Payload)
		}
		for _, id := range m.To {
			e.To = append(e.To, id.String())
		}
		out.print("", e)
	}
}

func printGroupEvents(ctx context.Context, g *group.Group, out *printer) {
	for {
		ev, err := g.NextEvent(ctx)
		if err != nil {
			return
		}
		e := &groupEvent{head: head{Event: ev.Kind.String()}, Peer: ev.Member.ID.String(), Name: ev.Member.Name}
		if !ev.Via.IsZero() {
			e.Via = ev.Via.String()
		}
		if ev.Err != nil {
			e.Reason = strings.TrimPrefix(ev.Err.Error(), "group: ")
		}
		if ev.Kind == group.Joined {
			e.Fingerprint = ev.Member.Fingerprint.String()
			e.Addrs = ev.Member.Addrs
		}
		out.print("", e)
	}
}

type groupReady struct {
	readyEvent
	Group string `json:"group"`
}

func (e *groupReady) text() string { return e.readyEvent.text() + ", group " + clean(e.Group) }

type groupMessage struct {
	head
	From   string   `json:"from"` // the sender's peer ID, as its signature proves
	Peer   string   `json:"peer"` // the same, as other message events name it
	Name   string   `json:"name"`
	Seq    uint64   `json:"seq"`
	To     []string `json:"to,omitempty"`
	Text   string   `json:"text"`
	Base64 string   `json:"base64,omitempty"`
}

func (e *groupMessage) text() string {
	return fmt.Sprintf("<%s> %s", peerLabel(e.Name, e.From), clean(e.Text))
}

type groupEvent struct {
	head
	Peer        string   `json:"peer"`
	Name        string   `json:"name"`
	Via         string   `json:"via,omitempty"`
	Fingerprint string   `json:"fingerprint,omitempty"`
	Addrs       []string `json:"addrs,omitempty"`
	Reason      string   `json:"reason,omitempty"`
}

func (e *groupEvent) text() string {
	s := e.Event + ": " + peerLabel(e.Name, e.Peer)
	if e.Via != "" {
		s += " via " + e.Via[:8]
	}
	if e.Reason != "" {
		s += " (" + clean(e.Reason) + ")"
	}
	return s
}
