//go:build linux

package netns

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Proc is a long-running process started by [Host.Start] or [StartCmd]. Its
// stdout and stderr are captured line by line and kept for the life of the
// Proc, so any number of waiters can look for lines, each from the start of
// the output or from a line of its choice ([Proc.WaitLineFrom]). Its stdin
// is a pipe. The process runs in a process group of its
// own, which is killed when the test ends; if the test failed, everything the
// process printed is logged then.
//
// A Proc is safe for concurrent use by multiple goroutines.
type Proc struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *lineLog
	stderr *lineLog

	done chan struct{} // closed once the process has exited and its output is read
	err  error         // what cmd.Wait returned; read only after done is closed

	reaped atomic.Bool // killed by the test's cleanup rather than exited by itself
}

// ErrExited is wrapped by the errors of [Proc.WaitLine] and [WaitJSON] when
// the process closed its output without printing a matching line.
var ErrExited = errors.New("process closed its output")

// StartCmd starts cmd (typically from [Host.Command]) as a [Proc]. It must
// not have been started and must not have Stdin, Stdout or Stderr set. The
// test fails if it cannot be started.
func StartCmd(t testing.TB, cmd *exec.Cmd) *Proc {
	t.Helper()
	p, err := startCmd(cmd)
	if err != nil {
		t.Fatalf("start %s: %v", cmdName(cmd), err)
	}
	t.Cleanup(func() { p.cleanup(t) })
	return p
}

func startCmd(cmd *exec.Cmd) (*Proc, error) {
	if cmd.Stdin != nil || cmd.Stdout != nil || cmd.Stderr != nil {
		return nil, errors.New("netns: StartCmd needs a command without Stdin, Stdout or Stderr")
	}
	ownGroup(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	// Plain pipes rather than StdoutPipe: we read them to EOF ourselves and
	// may close them early if a stray grandchild keeps the write end open.
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, err
	}
	p := &Proc{
		name:   cmdName(cmd),
		cmd:    cmd,
		stdin:  stdin,
		stdout: newLineLog(),
		stderr: newLineLog(),
		done:   make(chan struct{}),
	}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); p.stdout.readFrom(outR) }()
	go func() { defer readers.Done(); p.stderr.readFrom(errR) }()
	readersDone := make(chan struct{})
	go func() { readers.Wait(); close(readersDone) }()
	go func() {
		err := cmd.Wait()
		select {
		case <-readersDone:
		case <-time.After(2 * time.Second):
			// A process outside our group still holds the pipes: stop
			// reading rather than hang.
		}
		outR.Close()
		errR.Close()
		<-readersDone
		p.err = err
		close(p.done)
	}()
	return p, nil
}

// ownGroup puts cmd in a process group of its own, has the kernel kill it if
// the test binary dies, and, for a command made with exec.CommandContext,
// makes cancelling the context kill the whole group.
func ownGroup(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if cmd.Cancel != nil { // only CommandContext sets it
		cmd.Cancel = func() error {
			return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = 5 * time.Second
	}
}

func cmdName(cmd *exec.Cmd) string {
	// Skip the "ip netns exec NS unshare ... sh -c ... HOST" wrapper.
	args := cmd.Args
	for i, a := range args {
		if a == wrapperMark && i+2 < len(args) {
			return args[i+1] + ":" + strings.Join(args[i+2:], " ")
		}
	}
	return strings.Join(args, " ")
}

// String returns the command line, with the host name in front for a
// process that runs in a lab host.
func (p *Proc) String() string { return p.name }

// Pid returns the process ID, which is also its process group ID.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Write writes to the process's stdin.
func (p *Proc) Write(b []byte) (int, error) { return p.stdin.Write(b) }

// WriteLine writes s and a newline to the process's stdin.
func (p *Proc) WriteLine(s string) error {
	_, err := io.WriteString(p.stdin, s+"\n")
	return err
}

// CloseStdin closes the process's stdin, so it reads end of file.
func (p *Proc) CloseStdin() error { return p.stdin.Close() }

// Done is closed when the process has exited and its output has been read.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits for the process to exit and returns its exit error (nil for
// exit status 0, an [*exec.ExitError] otherwise), or ctx's error if ctx ends
// first; the process keeps running then.
func (p *Proc) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return fmt.Errorf("%s still running: %w", p, ctx.Err())
	}
}

// ExitCode returns the exit code once the process has exited, -1 if it was
// killed by a signal, and ok false while it is still running.
func (p *Proc) ExitCode() (code int, ok bool) {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), true
	default:
		return 0, false
	}
}

// Signal sends sig to the process's group. It does nothing once the process
// has exited.
func (p *Proc) Signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := syscall.Kill(-p.Pid(), sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %s: %w", p, err)
	}
	return nil
}

// Stop asks the process to exit with SIGTERM, waits until it has or ctx
// ends, then kills its group with SIGKILL. It returns the exit error.
func (p *Proc) Stop(ctx context.Context) error {
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	if err := p.Wait(ctx); ctx.Err() == nil {
		return err
	}
	p.kill()
	return p.Wait(context.Background())
}

func (p *Proc) kill() {
	// Only while the group leader is unreaped is its PID sure to be our group;
	// anything left after that is killed by the lab's namespace sweep.
	select {
	case <-p.done:
	default:
		syscall.Kill(-p.Pid(), syscall.SIGKILL)
	}
}

func (p *Proc) cleanup(t testing.TB) {
	select {
	case <-p.done:
	default:
		p.reaped.Store(true)
		p.kill()
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s: still running 10s after SIGKILL", p)
	}
	if t.Failed() {
		t.Logf("%s", p.Dump())
	}
}

// Lines returns the stdout lines printed so far, without their newlines.
func (p *Proc) Lines() []string { return p.stdout.lines() }

// StderrLines returns the stderr lines printed so far.
func (p *Proc) StderrLines() []string { return p.stderr.lines() }

// Stdout returns everything printed to stdout so far.
func (p *Proc) Stdout() string { return joinLines(p.stdout.lines()) }

// Stderr returns everything printed to stderr so far.
func (p *Proc) Stderr() string { return joinLines(p.stderr.lines()) }

// Dump describes the process, its state and all its output, for logs.
func (p *Proc) Dump() string {
	state := "running"
	select {
	case <-p.done:
		state = "exited: " + p.cmd.ProcessState.String()
		if p.reaped.Load() {
			state = "killed at the end of the test"
		}
	default:
	}
	return fmt.Sprintf("--- %s (%s)\n--- stdout:\n%s--- stderr:\n%s--- end of %s", p, state, p.Stdout(), p.Stderr(), p)
}

func joinLines(lines []string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// WaitLine returns the first stdout line, from the start of the output, for
// which match returns true. It waits for more output until ctx ends or the
// process closes its stdout (an error wrapping [ErrExited]). match is called
// from this goroutine only.
func (p *Proc) WaitLine(ctx context.Context, match func(line string) bool) (string, error) {
	return p.waitLine(ctx, p.stdout, "stdout", match)
}

// WaitStderrLine is [Proc.WaitLine] for stderr.
func (p *Proc) WaitStderrLine(ctx context.Context, match func(line string) bool) (string, error) {
	return p.waitLine(ctx, p.stderr, "stderr", match)
}

// WaitLineFrom is [Proc.WaitLine] starting at stdout line n (0 is the first
// line, as in [Proc.Lines]) instead of at the start of the output: earlier
// lines are not looked at, and n may lie beyond what has been printed so
// far. It also returns the index of the line it returns, so a caller that
// goes on from index+1 sees each line once, in order, like a reader of a
// pipe: for instance, a second "OK" after a second command.
func (p *Proc) WaitLineFrom(ctx context.Context, n int, match func(line string) bool) (line string, index int, err error) {
	return p.waitLineFrom(ctx, p.stdout, "stdout", n, match)
}

func (p *Proc) waitLine(ctx context.Context, l *lineLog, stream string, match func(string) bool) (string, error) {
	line, _, err := p.waitLineFrom(ctx, l, stream, 0, match)
	return line, err
}

func (p *Proc) waitLineFrom(ctx context.Context, l *lineLog, stream string, n int, match func(string) bool) (string, int, error) {
	seen := max(n, 0)
	for {
		lines, eof, changed := l.since(seen)
		for i, line := range lines {
			if match(line) {
				return line, seen + i, nil
			}
		}
		seen += len(lines)
		if eof {
			status := "still running"
			select {
			case <-p.done:
				status = p.cmd.ProcessState.String()
			case <-time.After(time.Second):
			}
			return "", -1, fmt.Errorf("%s: no matching line on %s%s (%s): %w", p, stream, fromLine(n), status, ErrExited)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return "", -1, fmt.Errorf("%s: no matching line on %s%s: %w", p, stream, fromLine(n), ctx.Err())
		}
	}
}

// fromLine describes where a wait started, for its error.
func fromLine(n int) string {
	if n <= 0 {
		return ""
	}
	return fmt.Sprintf(" from line %d", n)
}

// WaitJSON returns the first stdout line, from the start of the output, that
// decodes as a JSON value of type T for which match returns true. Lines that
// are not such JSON are skipped. It fails like [Proc.WaitLine].
func WaitJSON[T any](ctx context.Context, p *Proc, match func(T) bool) (T, error) {
	var found T
	_, err := p.WaitLine(ctx, func(line string) bool {
		v, ok := decodeJSON[T](line)
		if ok && match(v) {
			found = v
			return true
		}
		return false
	})
	return found, err
}

// JSONLines decodes every stdout line printed so far that is a JSON value of
// type T, in order, skipping the rest.
func JSONLines[T any](p *Proc) []T {
	var out []T
	for _, line := range p.Lines() {
		if v, ok := decodeJSON[T](line); ok {
			out = append(out, v)
		}
	}
	return out
}

func decodeJSON[T any](line string) (T, bool) {
	var v T
	line = strings.TrimSpace(line)
	if line == "" || (line[0] != '{' && line[0] != '[') {
		return v, false
	}
	if err := json.Unmarshal([]byte(line), &v); err != nil {
		return v, false
	}
	return v, true
}

// lineLog collects the lines read from one stream.
type lineLog struct {
	mu      sync.Mutex
	all     []string
	eof     bool
	changed chan struct{} // closed and replaced whenever all or eof changes
}

func newLineLog() *lineLog { return &lineLog{changed: make(chan struct{})} }

func (l *lineLog) readFrom(r io.Reader) {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			l.add(strings.TrimRight(line, "\r\n"), false)
		}
		if err != nil {
			l.add("", true)
			return
		}
	}
}

func (l *lineLog) add(line string, eof bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if eof {
		l.eof = true
	} else {
		l.all = append(l.all, line)
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// since returns the lines after the first n (none while there are not more
// than n), whether the stream has ended, and a channel that is closed on the
// next change.
func (l *lineLog) since(n int) (lines []string, eof bool, changed <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n = min(n, len(l.all))
	return l.all[n:len(l.all):len(l.all)], l.eof, l.changed
}

func (l *lineLog) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.all...)
}
