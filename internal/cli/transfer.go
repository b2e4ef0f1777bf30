package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/nearnet/nearnet"
)

// What send and receive share: the file events, the progress display (a
// bar on a terminal, rate-limited progress events otherwise) and terminal
// detection.

// progressInterval is the least time between two progress events for one
// file; the final one (all bytes) is always printed.
const progressInterval = 250 * time.Millisecond

// fileEvent is one file's offer, progress or outcome, on either side. See
// the event list in output.go.
type fileEvent struct {
	head
	Name    string `json:"name"`  // '/'-separated, as offered (received: as saved)
	Bytes   int64  `json:"bytes"` // the size; progress: the bytes done
	Total   *int64 `json:"total,omitempty"`
	Resumed *int64 `json:"resumed,omitempty"` // bytes kept from an earlier attempt
	SHA256  string `json:"sha256,omitempty"`
	Path    string `json:"path,omitempty"`
	Offered string `json:"offered,omitempty"` // received: the offered name, when renamed
	Exists  bool   `json:"exists,omitempty"`  // offer: the name is taken here
	Reason  string `json:"reason,omitempty"`
	From    string `json:"from,omitempty"` // receive: the sender's instance name
	To      string `json:"to,omitempty"`   // send: the receiver's instance name
	Peer    string `json:"peer"`

	took     time.Duration // sent, received: for the readable line's speed
	outgoing bool          // the send side: the peer is the receiver
}

// newFileEvent starts an event about name on the connection to c's peer:
// outgoing says which side this is.
func newFileEvent(kind string, c *nearnet.Conn, outgoing bool, name string, size int64) *fileEvent {
	p := c.Peer()
	e := &fileEvent{head: head{Event: kind}, Name: name, Bytes: size, Peer: p.ID.String(), outgoing: outgoing}
	if outgoing {
		e.To = p.Name
	} else {
		e.From = p.Name
	}
	return e
}

// newRefusedOffer is receive's event for an offer the library refused
// before it reached receive (Config.OnResourceRefused): an unsafe name, a
// malformed offer.
func newRefusedOffer(p nearnet.Peer, err error) *fileEvent {
	e := &fileEvent{head: head{Event: "refused"}, From: p.Name, Peer: p.ID.String(), Reason: errText(err)}
	var ne *nearnet.ResourceNameError
	if errors.As(err, &ne) {
		e.Name, e.Reason = ne.Name, "unsafe name: "+ne.Reason
	}
	return e
}

// with returns a copy of e as another kind of event.
func (e *fileEvent) with(kind string) *fileEvent {
	c := *e
	c.Event = kind
	return &c
}

func (e *fileEvent) text() string {
	q := `"` + clean(e.Name) + `"`
	peer := "from " + peerLabel(e.From, e.Peer)
	if e.outgoing {
		peer = "to " + peerLabel(e.To, e.Peer)
	}
	var b strings.Builder
	switch e.Event {
	case "offer":
		fmt.Fprintf(&b, "offer %s %s, %s", peer, q, humanBytes(e.Bytes))
		if e.Exists {
			b.WriteString(" (the name exists here)")
		}
	case "waiting":
		fmt.Fprintf(&b, "waiting for %s to accept %s (%s)", peerLabel(e.To, e.Peer), q, humanBytes(e.Bytes))
	case "progress":
		fmt.Fprintf(&b, "%s: %s of %s", q, humanBytes(e.Bytes), humanBytes(*e.Total))
		if *e.Total > 0 {
			fmt.Fprintf(&b, " (%d%%)", e.Bytes*100 / *e.Total)
		}
		if e.Resumed != nil && *e.Resumed > 0 {
			fmt.Fprintf(&b, ", resumed from %s", humanBytes(*e.Resumed))
		}
	case "received", "sent":
		fmt.Fprintf(&b, "%s %s %s: %s", e.Event, q, peer, humanBytes(e.Bytes))
		if e.took > 0 {
			fmt.Fprintf(&b, " in %s", e.took.Round(time.Millisecond))
			if rate := float64(e.Bytes-*e.Resumed) / e.took.Seconds(); e.Bytes > *e.Resumed {
				fmt.Fprintf(&b, " (%s/s)", humanBytes(int64(rate)))
			}
		}
		if *e.Resumed > 0 {
			fmt.Fprintf(&b, ", resumed from %s", humanBytes(*e.Resumed))
		}
		fmt.Fprintf(&b, ", sha256 %s", e.SHA256)
		if e.Offered != "" {
			fmt.Fprintf(&b, `, saved as "%s" ("%s" exists)`, clean(e.Name), clean(e.Offered))
		}
	case "rejected", "failed", "refused":
		fmt.Fprintf(&b, "%s %s %s: %s", e.Event, q, peer, clean(e.Reason))
		if e.Path != "" {
			fmt.Fprintf(&b, " (partial file %s)", clean(e.Path))
		}
	case "pruned":
		fmt.Fprintf(&b, "pruned partial file %s, %s: %s", clean(e.Path), humanBytes(e.Bytes), clean(e.Reason))
	default:
		fmt.Fprintf(&b, "%s %s", e.Event, q)
	}
	return b.String()
}

// summaryEvent ends send: how many of the files arrived.
type summaryEvent struct {
	head
	Files    int   `json:"files"`
	Sent     int   `json:"sent"`
	Rejected int   `json:"rejected"`
	Failed   int   `json:"failed"`
	Bytes    int64 `json:"bytes"` // the size of the files sent
}

func (e *summaryEvent) text() string {
	s := fmt.Sprintf("sent %d of %d files (%s)", e.Sent, e.Files, humanBytes(e.Bytes))
	if e.Rejected > 0 {
		s += fmt.Sprintf("; %d rejected", e.Rejected)
	}
	if e.Failed > 0 {
		s += fmt.Sprintf("; %d failed", e.Failed)
	}
	return s
}

// humanBytes formats n with IEC units: "512 B", "1.5 MiB".
func humanBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, units := float64(n), []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	for _, u := range units {
		v /= 1024
		if v < 1024 || u == units[len(units)-1] {
			return fmt.Sprintf("%.1f %s", v, u)
		}
	}
	return "" // not reached
}

// isTerminal reports whether x, a standard stream, is a terminal. Tests
// stand in for one with a type that has an isTerminal method.
func isTerminal(x any) bool {
	if t, ok := x.(interface{ isTerminal() bool }); ok {
		return t.isTerminal()
	}
	f, ok := x.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// ttyOut is stdout when it is a terminal and not in --json mode: progress
// bars redraw its last line, and an event line first erases the bar
// (which redraws itself at its next update).
type ttyOut struct {
	mu sync.Mutex // guards w
	w  io.Writer
}

// Write is for the bars.
func (t *ttyOut) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.w.Write(p)
}

// lines returns the writer for the printer: each Write, one whole line,
// starts by erasing the line the cursor is on.
func (t *ttyOut) lines() io.Writer { return ttyLines{t} }

type ttyLines struct{ t *ttyOut }

func (l ttyLines) Write(p []byte) (int, error) {
	l.t.mu.Lock()
	defer l.t.mu.Unlock()
	if _, err := io.WriteString(l.t.w, "\r\033[K"); err != nil {
		return 0, err
	}
	return l.t.w.Write(p)
}

// transferOut is where send and receive print: events through out, and
// bars on tty (nil unless stdout is a terminal and --json is off).
type transferOut struct {
	out *printer
	tty *ttyOut
}

func newTransferOut(stdout io.Writer, asJSON bool) *transferOut {
	if asJSON || !isTerminal(stdout) {
		return &transferOut{out: newPrinter(stdout, asJSON)}
	}
	t := &ttyOut{w: stdout}
	return &transferOut{out: newPrinter(t.lines(), false), tty: t}
}

// progressView shows one file's progress: a bar with speed and ETA, or
// progress events at most every progressInterval plus the final one. A
// value held back by the interval is printed when the interval is over,
// so the last state shows even when the transfer stalls. Call update
// from the transfer's goroutine, then finish once.
type progressView struct {
	to   *transferOut
	tmpl *fileEvent // name, peer; Event and Bytes are set per event

	mu       sync.Mutex // guards the fields below
	ended    bool
	last     time.Time   // when the last event was printed
	timer    *time.Timer // prints the held-back value; nil if none is held
	held     [2]int64    // done, total held back
	resumed  int64       // the first value of done
	started  bool
	bar      *progressbar.ProgressBar
	barStart time.Time // when the bar appeared: the receiver's answer
}

func (t *transferOut) progress(tmpl *fileEvent) *progressView {
	return &progressView{to: t, tmpl: tmpl}
}

func (v *progressView) update(done, total int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ended {
		return
	}
	if !v.started {
		v.started, v.resumed = true, done
	}
	if v.to.tty != nil {
		v.updateBar(done, total)
		return
	}
	if v.timer != nil {
		v.timer.Stop()
		v.timer = nil
	}
	now := time.Now()
	if done < total && now.Sub(v.last) < progressInterval {
		v.held = [2]int64{done, total}
		v.timer = time.AfterFunc(progressInterval-now.Sub(v.last), v.printHeld)
		return
	}
	v.printLocked(done, total)
}

func (v *progressView) printHeld() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ended || v.timer == nil {
		return
	}
	v.timer = nil
	v.printLocked(v.held[0], v.held[1])
}

func (v *progressView) printLocked(done, total int64) {
	v.last = time.Now()
	e := v.tmpl.with("progress")
	e.Bytes, e.Total, e.Resumed = done, &total, &v.resumed
	v.to.out.print("", e)
}

func (v *progressView) updateBar(done, total int64) {
	if v.bar == nil {
		if total-v.resumed <= 0 {
			return // nothing to show (an empty file, or all of it kept)
		}
		// The bar and its percentage are of the whole file, so a resumed
		// transfer starts part-full; the speed and ETA, in the
		// description, are this attempt's own, counted from the
		// receiver's answer (the library's rate would count the resumed
		// bytes as sent at once).
		v.barStart = time.Now()
		v.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(v.to.tty),
			progressbar.OptionSetDescription(v.describe(done, total)),
			progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionSetPredictTime(false), // the description has this attempt's ETA
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionFullWidth(),
			progressbar.OptionUseANSICodes(true),
			progressbar.OptionClearOnFinish(),
		)
	}
	_ = v.bar.Set64(done)
	v.bar.Describe(v.describe(done, total))
}

// describe is the text beside the bar: the file, the bytes done of the
// whole, this attempt's speed and ETA, and where a resume started.
func (v *progressView) describe(done, total int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, `"%s" %s / %s`, clean(v.tmpl.Name), humanBytes(done), humanBytes(total))
	if el := time.Since(v.barStart).Seconds(); done > v.resumed && el > 0.2 {
		rate := float64(done-v.resumed) / el
		fmt.Fprintf(&b, ", %s/s, ETA %s", humanBytes(int64(rate)), time.Duration(float64(total-done)/rate*float64(time.Second)).Round(time.Second))
	}
	if v.resumed > 0 {
		fmt.Fprintf(&b, " (resumed from %s)", humanBytes(v.resumed))
	}
	return b.String()
}

// finish stops the display; nothing is printed for this file afterwards.
func (v *progressView) finish() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.ended = true
	if v.timer != nil {
		v.timer.Stop()
		v.timer = nil
	}
	if v.bar != nil {
		_ = v.bar.Exit() // the next event line erases it
	}
}

// progressHookKey is a context key under which tests put a
// func(name string, done, total int64) that send calls with each progress
// report, on the transfer's goroutine (to stop a transfer mid-way without
// relying on timing).
type progressHookKey struct{}

func progressHook(ctx context.Context) func(string, int64, int64) {
	f, _ := ctx.Value(progressHookKey{}).(func(string, int64, int64))
	return f
}
