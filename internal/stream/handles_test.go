package stream

import (
	"testing"
	"time"
)

// A stream open may arrive before the link it names has joined its Conn
// (the dialer has our hello, sent before the link is attached): the
// listener waits for the handle instead of refusing at once. (Moved here
// from the root's tests with the handle table.)
func TestStreamHandleAwaited(t *testing.T) {
	var hs Handles[int]
	done := make(chan struct{})
	got := make(chan bool, 1)
	go func() {
		_, ok := hs.Find("late", time.Now().Add(10*time.Second), done)
		got <- ok
	}()
	time.Sleep(20 * time.Millisecond) // let it wait; the test passes either way if it did not yet
	hs.Add("late", 1)
	if !<-got {
		t.Fatal("a handle added while the open waited was not found")
	}
	if _, ok := hs.Find("never", time.Now().Add(10*time.Millisecond), done); ok {
		t.Fatal("an unknown handle was found")
	}
}
