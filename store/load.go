package store

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/redis/go-redis/v9"
)

// loadBatch is how many states one pipelined read fetches: large enough that a round trip carries real work,
// small enough that a few batches in flight stay a few megabytes at any N.
const loadBatch = 1000

// Load reads the state of every named token in pipelined batches. It holds every decoded state (with its
// decrypted tokens) at once: a start-up over many tokens uses LoadEach instead.
func (s *Store) Load(ctx context.Context, names []string) (map[string]*State, error) {
	out := make(map[string]*State, len(names))
	err := s.LoadEach(ctx, names, func(states []*State) error {
		for _, st := range states {
			out[st.Name] = st
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// LoadEach reads the state of every named token, 1,000 per round trip, and calls fn once per batch with
// that batch's states in the order of names (fn runs on the caller's goroutine, one batch at a time, and
// may keep the slice). A start-up over 100,000 tokens thus holds a few batches of decoded state rather
// than all of it, and its two costs overlap: while fn runs on batch i, batch i+1 is being decoded (JSON
// and AES-GCM, on GOMAXPROCS goroutines) and batch i+2 read from Redis.
//
// The first error ends the load: a read error, a state that does not decode (the error names the token;
// errors.Is(err, ErrUnseal) under a wrong state key), fn's error, or ctx ending. fn has then been called
// for the batches before the failing one only. Every goroutine LoadEach starts has ended when it returns.
func (s *Store) LoadEach(ctx context.Context, names []string, fn func([]*State) error) error {
	type batch struct {
		names  []string
		cmds   []*redis.MapStringStringCmd
		states []*State
		err    error
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	// send hands b to the next stage; false when the load is over (an error downstream, or ctx).
	send := func(ch chan<- batch, b batch) bool {
		select {
		case ch <- b:
			return b.err == nil
		case <-ctx.Done():
			return false
		}
	}
	read := make(chan batch, 1)
	wg.Go(func() {
		defer close(read)
		for i := 0; i < len(names); i += loadBatch {
			b := batch{names: names[i:min(i+loadBatch, len(names))]}
			b.cmds, b.err = s.fetch(ctx, b.names)
			if !send(read, b) {
				return
			}
		}
	})
	decoded := make(chan batch, 1)
	wg.Go(func() {
		defer close(decoded)
		for b := range read {
			if b.err == nil {
				b.states, b.err = s.decodeBatch(b.names, b.cmds)
				b.cmds = nil
			}
			if !send(decoded, b) {
				return
			}
		}
	})
	done := 0
	for b := range decoded {
		if b.err != nil {
			return b.err
		}
		if ctx.Err() != nil {
			break
		}
		if err := fn(b.states); err != nil {
			return err
		}
		done += len(b.names)
	}
	if done < len(names) { // the stages stopped early: ctx ended between two reads
		return fmt.Errorf("loading state: %w", context.Cause(ctx))
	}
	return nil
}

// fetch reads the hashes of names in one pipeline.
func (s *Store) fetch(ctx context.Context, names []string) ([]*redis.MapStringStringCmd, error) {
	cmds := make([]*redis.MapStringStringCmd, len(names))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for j, n := range names {
			cmds[j] = p.HGetAll(ctx, s.stateKey(n))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("loading state: %w", err)
	}
	return cmds, nil
}

// decodeBatch decodes the hashes fetch read, split over GOMAXPROCS goroutines: decoding is CPU (two
// AES-GCM opens and JSON per token), the one part of a start-up that more cores shorten. Of several
// tokens that fail, the first in names order is reported.
func (s *Store) decodeBatch(names []string, cmds []*redis.MapStringStringCmd) ([]*State, error) {
	states := make([]*State, len(names))
	errs := make([]error, len(names))
	workers := min(runtime.GOMAXPROCS(0), len(names))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for j := w; j < len(names); j += workers {
				states[j], errs[j] = s.decodeState(names[j], cmds[j].Val())
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return states, nil
}
