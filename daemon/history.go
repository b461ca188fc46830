package daemon

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/rotation"
	"github.com/tokend/tokend/store"
)

const (
	// pendingPerToken bounds the operations kept for one token while its Work call runs.
	pendingPerToken = 32
	// historyQueue bounds the events waiting for the writer; beyond it new events are dropped.
	historyQueue = 10000
)

// historyStore is what the recorder needs of the store.
type historyStore interface {
	AppendHistory(ctx context.Context, events map[string][]store.Event) error
	LastErrors(ctx context.Context, names []string) (map[string]string, error)
	Instance() string
}

// history is the engine's rotation.Observer: it forwards everything to next (the metrics) and records
// each operation in the token's history in Redis, which the status page shows.
//
// Writes stay off the rotation path. An operation waits with its token until the engine reports the
// token changed: by then a failure's scrubbed text is in the token's state, from which the writer copies
// it (the Observer is told only the error class). A writer goroutine then appends what is ready for all
// tokens in one pipelined round trip. History is best effort: when Redis is slow and the queue is full,
// events are dropped and the drop is logged, and a rotation never waits for it.
type history struct {
	next  rotation.Observer
	store historyStore
	log   *slog.Logger
	now   func() time.Time

	mu      sync.Mutex
	pending map[string][]store.Event // operations of a Work call under way
	ready   map[string][]store.Event // waiting for the writer
	queued  int
	dropped int
	wake    chan struct{}
}

func newHistory(st historyStore, next rotation.Observer, logger *slog.Logger) *history {
	return &history{
		next: next, store: st, log: logger, now: time.Now,
		pending: map[string][]store.Event{}, ready: map[string][]store.Event{}, wake: make(chan struct{}, 1),
	}
}

// Operation records op and forwards it.
func (h *history) Operation(token, provider, op, result string, d time.Duration) {
	h.next.Operation(token, provider, op, result, d)
	if op == "inspect" && result == "success" {
		return // a poll that found nothing new: one a minute per token would push the rotations out
	}
	e := store.Event{Time: h.now().UTC(), Operation: op, Result: result, DurationMS: d.Milliseconds(), Instance: h.store.Instance()}
	if op == "inspect" && result == providers.NotFound.String() {
		e.Error = "the vendor no longer knows this token (deleted or revoked behind tokend's back)"
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.pending[token]
	if len(p) >= pendingPerToken {
		p = p[1:]
		h.dropped++
	}
	h.pending[token] = append(p, e)
}

// Delivery forwards a delivery: the deliver operation that contains it is recorded by Operation.
func (h *history) Delivery(token, sink, result string) { h.next.Delivery(token, sink, result) }

// Changed hands the token's operations to the writer and forwards the change.
func (h *history) Changed(name string) {
	h.next.Changed(name)
	h.mu.Lock()
	p, ok := h.pending[name]
	if ok {
		delete(h.pending, name)
		if h.queued+len(p) > historyQueue {
			h.dropped += len(p)
		} else {
			h.ready[name] = append(h.ready[name], p...)
			h.queued += len(p)
		}
	}
	h.mu.Unlock()
	if ok {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
}

// start runs the writer until the returned stop is called; stop writes what is left and waits for it.
// The daemon stops it after the rotations under way finished, so their last events are kept.
func (h *history) start() (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				h.flush()
				return
			case <-h.wake:
				h.flush()
			}
		}
	}()
	return func() { close(quit); <-done }
}

// flush writes every ready event: fills in failures' texts from the tokens' states, then appends.
func (h *history) flush() {
	h.mu.Lock()
	batch, dropped := h.ready, h.dropped
	h.ready, h.queued, h.dropped = map[string][]store.Event{}, 0, 0
	h.mu.Unlock()
	if dropped > 0 {
		h.log.Warn("history: events dropped (Redis slow or unreachable)", "dropped", dropped)
	}
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var failing []string
	for name, evs := range batch {
		for _, e := range evs {
			if needsErrorText(e) {
				failing = append(failing, name)
				break
			}
		}
	}
	if len(failing) > 0 {
		errs, err := h.store.LastErrors(ctx, failing)
		if err != nil {
			h.log.Warn("history: reading failures", "err", err)
		}
		for _, name := range failing {
			evs := batch[name]
			for i := range evs {
				if needsErrorText(evs[i]) {
					evs[i].Error = errs[name]
				}
			}
		}
	}
	if err := h.store.AppendHistory(ctx, batch); err != nil {
		h.log.Warn("history: writing", "tokens", len(batch), "err", err)
	}
}

// needsErrorText reports whether e is a failure whose text the token's state holds. A failed poll
// (inspect) is not recorded there, so it keeps only its class, or a fixed sentence for a token gone.
func needsErrorText(e store.Event) bool { return !e.Succeeded() && e.Operation != "inspect" }
