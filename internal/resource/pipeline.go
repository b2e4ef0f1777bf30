package resource

import (
	"context"
	"hash"
	"sync"
	"sync/atomic"
)

// pipeBuffers is how many buffers of bufSize a transfer moves its content
// through on each side: enough that reading the next chunk, hashing one
// and writing one all go on at once. Memory per transfer is this many
// buffers, whatever the size of the resource.
const pipeBuffers = 4

// buffers takes a transfer's buffers from the pool; put gives them back.
type buffers [pipeBuffers]*[]byte

func getBuffers() *buffers {
	var bs buffers
	for i := range bs {
		bs[i] = bufPool.Get().(*[]byte)
	}
	return &bs
}

func (bs *buffers) put() {
	for _, b := range bs {
		bufPool.Put(b)
	}
}

// chunk is a buffer on its way through a pipe.
type chunk struct {
	buf    []byte
	n      int
	end    int64        // offset just after the chunk's bytes
	left   atomic.Int32 // consumers not yet done with it
	failed bool         // the writer had failed and did not write it
}

// pipeResult is how a pipe ended.
type pipeResult struct {
	done     int64 // bytes hashed and written, from the start offset
	ctxErr   error // ctx ended, seen between two chunks
	fillErr  error // from fill; the bytes it returned with the error were consumed
	writeErr error // from write; no later bytes were written
}

// pipe moves the content from offset from to size: the calling goroutine
// fills buffers, and each filled buffer is hashed into h and written at
// the same time, by two goroutines, while the next is filled (SHA-256
// costs about as much as TLS, and the two sides of a transfer are
// pipelines of their own, so all of it overlaps). Chunks are hashed and
// written in order. progress is called from the calling goroutine with
// the end of each chunk that is both hashed and written. pipe stops at
// the first error, or once ctx is done, and returns after both goroutines
// have; h then holds the hash of the first done bytes after from.
func pipe(ctx context.Context, bs *buffers, from, size int64, h hash.Hash,
	fill func([]byte) (int, error), write func(b []byte, end int64) error, progress func(done int64)) pipeResult {
	res := pipeResult{done: from}
	if from >= size {
		return res
	}
	toHash := make(chan *chunk, pipeBuffers)
	toWrite := make(chan *chunk, pipeBuffers)
	// Consumed chunks come back here; it never fills, since no more than
	// pipeBuffers chunks exist.
	back := make(chan *chunk, pipeBuffers)
	release := func(c *chunk) {
		if c.left.Add(-1) == 0 {
			back <- c
		}
	}
	var writeFailed atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for c := range toHash {
			h.Write(c.buf[:c.n])
			release(c)
		}
	})
	wg.Go(func() {
		for c := range toWrite {
			if res.writeErr == nil {
				res.writeErr = write(c.buf[:c.n], c.end)
				writeFailed.Store(res.writeErr != nil)
			}
			c.failed = res.writeErr != nil
			release(c)
		}
	})
	// took records a consumed chunk. Two chunks may come back out of
	// order (each is sent by whichever consumer finished it last), but a
	// chunk is finished only after every chunk before it, so the highest
	// end seen is what is done.
	took := func(c *chunk) {
		if !c.failed && c.end > res.done {
			res.done = c.end
			progress(res.done)
		}
	}

	free := make([]*chunk, 0, pipeBuffers)
	for _, b := range bs {
		free = append(free, &chunk{buf: *b})
	}
	inFlight := 0
	for off := from; off < size; {
		if writeFailed.Load() {
			break
		}
		if err := ctx.Err(); err != nil {
			res.ctxErr = err
			break
		}
		var c *chunk
		if k := len(free); k > 0 {
			c, free = free[k-1], free[:k-1]
		} else {
			c = <-back
			inFlight--
			took(c)
		}
		n, err := fill(c.buf[:min(int64(len(c.buf)), size-off)])
		if n > 0 {
			off += int64(n)
			c.n, c.end, c.failed = n, off, false
			c.left.Store(2)
			inFlight++
			toHash <- c
			toWrite <- c
		} else {
			free = append(free, c)
		}
		if err != nil {
			res.fillErr = err
			break
		}
	}
	close(toHash)
	close(toWrite)
	for ; inFlight > 0; inFlight-- {
		took(<-back)
	}
	wg.Wait()
	return res
}
