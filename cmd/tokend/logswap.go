package main

import (
	"context"
	"log/slog"
	"slices"
	"sync/atomic"
)

// switchHandler is a slog.Handler whose underlying handler a reload can replace (log.format changed), even
// under loggers already derived from it with With or WithGroup: those replay their attributes and groups
// on the current handler, once per replacement. It is safe for concurrent use.
type switchHandler struct {
	root  *atomic.Pointer[slog.Handler]
	ops   []func(slog.Handler) slog.Handler // With and WithGroup calls, oldest first
	cache atomic.Pointer[derived]
}

// derived is ops applied to the root handler stored at base.
type derived struct {
	base *slog.Handler
	h    slog.Handler
}

func newSwitchHandler(h slog.Handler) *switchHandler {
	s := &switchHandler{root: new(atomic.Pointer[slog.Handler])}
	s.root.Store(&h)
	return s
}

// Set makes h the handler of every logger built on s or derived from it.
func (s *switchHandler) Set(h slog.Handler) { s.root.Store(&h) }

func (s *switchHandler) current() slog.Handler {
	base := s.root.Load()
	if len(s.ops) == 0 {
		return *base
	}
	if c := s.cache.Load(); c != nil && c.base == base {
		return c.h
	}
	h := *base
	for _, op := range s.ops {
		h = op(h)
	}
	s.cache.Store(&derived{base: base, h: h})
	return h
}

func (s *switchHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return s.current().Enabled(ctx, l)
}

func (s *switchHandler) Handle(ctx context.Context, r slog.Record) error {
	return s.current().Handle(ctx, r)
}

func (s *switchHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return s
	}
	return s.with(func(h slog.Handler) slog.Handler { return h.WithAttrs(attrs) })
}

func (s *switchHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return s
	}
	return s.with(func(h slog.Handler) slog.Handler { return h.WithGroup(name) })
}

func (s *switchHandler) with(op func(slog.Handler) slog.Handler) *switchHandler {
	return &switchHandler{root: s.root, ops: append(slices.Clip(s.ops), op)}
}
