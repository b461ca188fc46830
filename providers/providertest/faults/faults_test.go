package faults

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// front is a Handler over an API that counts its calls and answers a JSON body, with a fail callback that
// writes the status and a marker body.
type front struct {
	in    *Injector
	h     http.Handler
	acted atomic.Int32 // API calls
}

func newFront(opts Options, body string) *front {
	f := &front{in: New(opts)}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.acted.Add(1)
		w.Header().Set("Location", "/tokens/1")
		w.Header().Set("Content-Type", "application/vendor+json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(body))
	})
	f.h = Handler(f.in, api, func(w http.ResponseWriter, status int) {
		w.WriteHeader(status)
		_, _ = w.Write([]byte("vendor error"))
	})
	return f
}

func (f *front) do(path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, nil))
	return rec
}

func TestScripted(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f := newFront(Options{Now: func() time.Time { return now }, Exempt: func(r *http.Request) bool { return r.URL.Path == "/login" },
		Garbage: "<html>"}, `{"id": "1", "secret": "s3cr3t"}`)

	f.in.FailNext(http.StatusTooManyRequests, 2)
	for i := range 2 {
		rec := f.do("/tokens")
		if rec.Code != 429 || rec.Header().Get("Retry-After") != "1" || rec.Body.String() != "vendor error" {
			t.Errorf("FailNext(429) answer %d = %d %q Retry-After %q, want 429 from fail with Retry-After: 1", i, rec.Code, rec.Body, rec.Header().Get("Retry-After"))
		}
	}
	if n := f.acted.Load(); n != 0 {
		t.Errorf("FailNext: the API acted %d times, want 0", n)
	}
	if rec := f.do("/tokens"); rec.Code != 201 || f.acted.Load() != 1 {
		t.Errorf("after FailNext(_, 2): %d, acted %d, want 201 and 1", rec.Code, f.acted.Load())
	}

	f.in.FailNext(http.StatusServiceUnavailable, 1)
	if rec := f.do("/login"); rec.Code != 201 {
		t.Errorf("exempt request under FailNext = %d, want 201", rec.Code)
	}
	if rec := f.do("/tokens"); rec.Code != 503 {
		t.Errorf("FailNext(503) after an exempt request = %d, want 503", rec.Code)
	}

	f.in.MalformedNext(1)
	rec := f.do("/tokens")
	if rec.Code != 200 || rec.Body.String() != `{"id": "1", "se` || json.Valid(rec.Body.Bytes()) || f.acted.Load() != 3 {
		t.Errorf("MalformedNext answer = %d %q, acted %d, want 200 with the first half of the body, acted 3", rec.Code, rec.Body, f.acted.Load())
	}
	if rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Location") != "/tokens/1" {
		t.Errorf("MalformedNext headers = %v, want the API's with a JSON Content-Type", rec.Header())
	}
	if got := rec.Header().Get("Date"); got != now.Format(http.TimeFormat) {
		t.Errorf("Date = %q, want the fake's clock %q", got, now.Format(http.TimeFormat))
	}
	if n := f.in.Requests(); n != 6 {
		t.Errorf("Requests() = %d, want 6", n)
	}

	short := newFront(Options{Garbage: "<html>"}, "")
	short.in.MalformedNext(1)
	if rec := short.do("/tokens"); rec.Code != 200 || rec.Body.String() != "<html>" {
		t.Errorf("MalformedNext of an empty answer = %d %q, want 200 with the garbage", rec.Code, rec.Body)
	}
}

func TestRandom(t *testing.T) {
	f := newFront(Options{ServerErrors: []int{500, 503}}, `{}`)
	seq := func() []int {
		f.in.SetFaults(Profile{ErrorRate: 0.4, RateLimitRate: 0.2, MalformedRate: 0.2, Seed: 7})
		var out []int
		for range 200 {
			rec := f.do("/tokens")
			code := rec.Code
			if code == 200 {
				code = -1 // malformed
			}
			out = append(out, code)
		}
		return out
	}
	a, b := seq(), seq()
	if !slices.Equal(a, b) {
		t.Errorf("the same seed drew different faults")
	}
	for _, code := range []int{-1, 201, 429, 500, 503} {
		if !slices.Contains(a, code) {
			t.Errorf("answers under faults lack %d: %v", code, a)
		}
	}
	f.in.SetFaults(Profile{})
	for range 50 {
		if rec := f.do("/tokens"); rec.Code != 201 {
			t.Fatalf("zero Profile: answer %d, want 201", rec.Code)
		}
	}
}

func TestDrop(t *testing.T) {
	f := newFront(Options{}, `{}`)
	srv := httptest.NewServer(f.h)
	defer srv.Close()
	f.in.SetFaults(Profile{DropRate: 1})
	resp, err := srv.Client().Post(srv.URL+"/tokens", "application/json", strings.NewReader("{}"))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("DropRate 1: answer %d, want none", resp.StatusCode)
	}
	if n := f.acted.Load(); n != 1 {
		t.Errorf("a dropped request acted %d times, want 1", n)
	}
}

func TestDelayGivesUpWithTheClient(t *testing.T) {
	f := newFront(Options{}, `{}`)
	f.in.SetFaults(Profile{Delay: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodPost, "/tokens", nil))
	if n := f.acted.Load(); n != 0 || rec.Body.Len() != 0 {
		t.Errorf("a request whose client gave up during the delay: acted %d, body %q, want neither", n, rec.Body)
	}
}
