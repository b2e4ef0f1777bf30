//go:build linux

package netns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestProcLinesStdinAndExit(t *testing.T) {
	p := StartCmd(t, exec.Command("sh", "-c",
		`echo one; echo '{"event":"x","n":1}'; read l; echo "got $l"; echo oops >&2; printf 'no newline'; exit 3`))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	if _, err := p.WaitLine(ctx, func(l string) bool { return l == "one" }); err != nil {
		t.Fatal(err)
	}
	type ev struct {
		Event string `json:"event"`
		N     int    `json:"n"`
	}
	got, err := WaitJSON(ctx, p, func(e ev) bool { return e.Event == "x" })
	if err != nil || got.N != 1 {
		t.Fatalf("WaitJSON = %+v, %v; want n=1", got, err)
	}
	if err := p.WriteLine("hi"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.WaitLine(ctx, func(l string) bool { return l == "got hi" }); err != nil {
		t.Fatal(err)
	}
	var exitErr *exec.ExitError
	if err := p.Wait(ctx); !errors.As(err, &exitErr) || exitErr.ExitCode() != 3 {
		t.Fatalf("Wait = %v; want exit status 3", err)
	}
	if code, ok := p.ExitCode(); !ok || code != 3 {
		t.Fatalf("ExitCode = %d, %v; want 3, true", code, ok)
	}
	if want := []string{"one", `{"event":"x","n":1}`, "got hi", "no newline"}; !slices.Equal(p.Lines(), want) {
		t.Fatalf("Lines = %q; want %q", p.Lines(), want)
	}
	if want := []string{"oops"}; !slices.Equal(p.StderrLines(), want) {
		t.Fatalf("StderrLines = %q; want %q", p.StderrLines(), want)
	}
	if evs := JSONLines[ev](p); len(evs) != 1 || evs[0].Event != "x" {
		t.Fatalf("JSONLines = %+v", evs)
	}
	// Waiting past the end of the output fails at once, not at the deadline.
	if _, err := p.WaitLine(ctx, func(l string) bool { return l == "never" }); !errors.Is(err, ErrExited) {
		t.Fatalf("WaitLine after exit = %v; want ErrExited", err)
	}
	if !strings.Contains(p.Dump(), "oops") {
		t.Fatalf("Dump lacks stderr:\n%s", p.Dump())
	}
}

func TestProcDeadlineAndStop(t *testing.T) {
	p := StartCmd(t, exec.Command("sh", "-c", "echo start; exec sleep 60"))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := p.WaitLine(ctx, func(l string) bool { return l == "never" }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitLine = %v; want a deadline error", err)
	}
	stopCtx, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if err := p.Stop(stopCtx); err == nil {
		t.Fatal("Stop: want the exit error of a process killed by SIGTERM")
	}
	if code, ok := p.ExitCode(); !ok || code != -1 {
		t.Fatalf("ExitCode = %d, %v; want -1 (signalled), true", code, ok)
	}
}

func TestProcCleanupKillsGroup(t *testing.T) {
	var p *Proc
	var child int
	t.Run("inner", func(t *testing.T) {
		// A child in the same group that would outlive its parent.
		p = StartCmd(t, exec.Command("sh", "-c", "sleep 60 & echo $!; wait"))
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		line, err := p.WaitLine(ctx, func(string) bool { return true })
		if err != nil {
			t.Fatal(err)
		}
		if child, err = strconv.Atoi(line); err != nil {
			t.Fatal(err)
		}
	})
	if p == nil || child == 0 {
		t.FailNow()
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("process still running after its test's cleanup")
	}
	for i := 0; ; i++ {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child))
		if err != nil || zombie(stat) {
			break
		}
		if i == 100 {
			t.Fatalf("child %d of the process group still alive after cleanup", child)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestProcWaitLineFrom reads the output like a pipe: each wait starts after
// the line the last one returned, so a repeated line is found again only
// when it is printed again.
func TestProcWaitLineFrom(t *testing.T) {
	p := StartCmd(t, exec.Command("sh", "-c", `echo OK; echo x; while read l; do echo "$l"; done`))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	isOK := func(l string) bool { return l == "OK" }

	line, i, err := p.WaitLineFrom(ctx, 0, isOK)
	if err != nil || line != "OK" || i != 0 {
		t.Fatalf("WaitLineFrom(0) = %q, %d, %v; want OK, 0", line, i, err)
	}
	// Past the first OK there is none yet: a short wait ends at its deadline.
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	_, i, err = p.WaitLineFrom(short, 1, isOK)
	cancelShort()
	if !errors.Is(err, context.DeadlineExceeded) || i != -1 {
		t.Fatalf("WaitLineFrom(1) before a second OK = %d, %v; want -1 and a deadline error", i, err)
	}
	if err := p.WriteLine("OK"); err != nil {
		t.Fatal(err)
	}
	if line, i, err = p.WaitLineFrom(ctx, 1, isOK); err != nil || line != "OK" || i != 2 {
		t.Fatalf("WaitLineFrom(1) = %q, %d, %v; want the second OK, 2", line, i, err)
	}
	// A start beyond the output waits for lines to come.
	got := make(chan string, 1)
	go func() {
		line, _, err := p.WaitLineFrom(ctx, 4, func(string) bool { return true })
		if err != nil {
			line = err.Error()
		}
		got <- line
	}()
	for _, l := range []string{"three", "four"} {
		if err := p.WriteLine(l); err != nil {
			t.Fatal(err)
		}
	}
	if line := <-got; line != "four" {
		t.Fatalf("WaitLineFrom(4) = %q; want four", line)
	}
	if want := []string{"OK", "x", "OK", "three", "four"}; !slices.Equal(p.Lines(), want) {
		t.Fatalf("Lines = %q; want %q", p.Lines(), want)
	}
	// Negative counts from the start; WaitLine is WaitLineFrom 0.
	if line, i, err = p.WaitLineFrom(ctx, -3, func(l string) bool { return l == "x" }); err != nil || i != 1 {
		t.Fatalf("WaitLineFrom(-3) = %q, %d, %v; want x, 1", line, i, err)
	}
	if err := p.CloseStdin(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.WaitLineFrom(ctx, 3, isOK); !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "from line 3") {
		t.Fatalf("WaitLineFrom(3) after exit = %v; want ErrExited, from line 3", err)
	}
}
