package bot

import (
	"context"
	"sync"
)

// Dispatcher runs commands on a bounded pool of goroutines, so an adapter
// can acknowledge its platform at once and let the work continue. Close
// waits for every accepted command to finish.
type Dispatcher struct {
	h     Handler
	ctx   context.Context
	jobs  chan Command
	slots chan struct{} // one per accepted command not yet finished
	wg    sync.WaitGroup

	mu     sync.RWMutex
	closed bool
}

// NewDispatcher starts workers goroutines that pass commands to h with ctx.
// queue is how many accepted commands may wait for a worker.
func NewDispatcher(ctx context.Context, h Handler, workers, queue int) *Dispatcher {
	if workers < 1 {
		workers = 1
	}
	if queue < 0 {
		queue = 0
	}
	d := &Dispatcher{h: h, ctx: ctx, jobs: make(chan Command, workers+queue), slots: make(chan struct{}, workers+queue)}
	for i := 0; i < workers; i++ {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			for cmd := range d.jobs {
				h.Handle(ctx, cmd)
				<-d.slots
			}
		}()
	}
	return d
}

// Submit queues cmd. It returns false, and drops cmd, when every worker is
// busy and the queue is full, or the dispatcher is closed; the adapter then
// tells the user to retry.
func (d *Dispatcher) Submit(cmd Command) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return false
	}
	select {
	case d.slots <- struct{}{}:
		d.jobs <- cmd // never blocks: jobs holds as many as there are slots
		return true
	default:
		return false
	}
}

// Close stops accepting commands and waits for the queued ones to finish.
func (d *Dispatcher) Close() {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		close(d.jobs)
	}
	d.mu.Unlock()
	d.wg.Wait()
}
