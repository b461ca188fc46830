// Package faults injects failures into the vendor fakes (astratest, vcdtest, commvaulttest, huaweiidctest),
// so that the four fail in the same ways for the same settings: scripted ones for tests (FailNext,
// MalformedNext) and random ones for the demo and the reliability runs (SetFaults).
//
// An Injector decides when a request fails and how long its answer waits; Handler carries that out in front
// of the fake's API, and dates and counts every request on the way. The fake keeps what is its vendor's own:
// the error body of an injected status (Handler calls back for it) and the junk of a malformed answer.
package faults

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// Profile is a set of random faults, drawn per request in the order error, rate limit, malformed, drop.
// Rates are in [0, 1]; the zero Profile injects nothing. A malformed or dropped request is still acted on:
// the vendor did the work and the answer was lost, which is the hard case for a client.
type Profile struct {
	ErrorRate     float64       // answer a server error (Options.ServerErrors) without acting
	RateLimitRate float64       // answer 429 with Retry-After: 1 without acting
	MalformedRate float64       // act, then answer 200 with a truncated body
	DropRate      float64       // act, then close the connection without an answer
	Delay         time.Duration // before every answer
	Seed          int64         // the same seed draws the same faults for the same requests
}

// Options are what differs between the fakes' fronts.
type Options struct {
	// Now is the fake's clock, which dates every answer, so that a client can see its skew as it would a
	// real server's. Nil: time.Now.
	Now func() time.Time
	// ServerErrors are the statuses ErrorRate answers, picked evenly. Empty: 503.
	ServerErrors []int
	// Exempt names requests that FailNext and MalformedNext pass over (random faults still apply), such as
	// a login that a test does not count among the API requests. Nil: none.
	Exempt func(*http.Request) bool
	// Garbage is the body of a malformed answer whose own body is too short to cut in half. Empty: "{".
	Garbage string
}

// An Injector decides which requests fail. It is safe for concurrent use. Fakes embed it, so that its
// methods are theirs.
type Injector struct {
	opts Options

	mu         sync.Mutex
	requests   int
	failStatus int
	failN      int
	malformedN int
	profile    Profile
	rng        *rand.Rand // nil until SetFaults
}

// New returns an Injector that injects nothing until told to.
func New(opts Options) *Injector {
	if len(opts.ServerErrors) == 0 {
		opts.ServerErrors = []int{http.StatusServiceUnavailable}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Garbage == "" {
		opts.Garbage = "{"
	}
	return &Injector{opts: opts}
}

// FailNext makes the next n requests answer status without acting (a 429 carries Retry-After: 1).
func (in *Injector) FailNext(status, n int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.failStatus, in.failN = status, n
}

// MalformedNext makes the next n requests act and then answer 200 with a truncated body.
func (in *Injector) MalformedNext(n int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.malformedN = n
}

// SetFaults sets the random faults and reseeds them; the zero Profile turns them off. FailNext and
// MalformedNext go first while they last.
func (in *Injector) SetFaults(p Profile) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.profile = p
	in.rng = rand.New(rand.NewPCG(uint64(p.Seed), uint64(p.Seed)^0x9e3779b97f4a7c15))
}

// Requests counts the requests the fake received, faulted or not.
func (in *Injector) Requests() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.requests
}

// fault is what happens to one request.
type fault struct {
	status    int // non-zero: answer it without acting
	malformed bool
	drop      bool
	delay     time.Duration
}

// next counts r and decides its fault: scripted faults first, then a random one.
func (in *Injector) next(r *http.Request) fault {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.requests++
	p := in.profile
	f := fault{delay: p.Delay}
	scripted := in.opts.Exempt == nil || !in.opts.Exempt(r)
	switch {
	case scripted && in.failN > 0:
		in.failN--
		f.status = in.failStatus
	case scripted && in.malformedN > 0:
		in.malformedN--
		f.malformed = true
	case in.rng != nil:
		switch x := in.rng.Float64(); {
		case x < p.ErrorRate:
			f.status = in.opts.ServerErrors[in.rng.IntN(len(in.opts.ServerErrors))]
		case x < p.ErrorRate+p.RateLimitRate:
			f.status = http.StatusTooManyRequests
		case x < p.ErrorRate+p.RateLimitRate+p.MalformedRate:
			f.malformed = true
		case x < p.ErrorRate+p.RateLimitRate+p.MalformedRate+p.DropRate:
			f.drop = true
		}
	}
	return f
}

// Handler serves api, failing requests as in decides. Every answer carries a Date on Options.Now. A request
// waits out the delay first (and is answered nothing if the client gives up meanwhile). An injected status does not reach api: fail writes it in the vendor's
// error shape, after Serve has set Retry-After: 1 on a 429. A dropped request runs api and then closes the
// connection without an answer. A malformed one runs api and then answers 200 with api's headers, a JSON
// Content-Type and the first half of its body (Options.Garbage when the body is shorter than two bytes).
func Handler(in *Injector, api http.Handler, fail func(w http.ResponseWriter, status int)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", in.opts.Now().UTC().Format(http.TimeFormat))
		serve(w, r, in.next(r), api, fail, in.opts.Garbage)
	})
}

func serve(w http.ResponseWriter, r *http.Request, f fault, api http.Handler, fail func(http.ResponseWriter, int), garbage string) {
	if f.delay > 0 {
		t := time.NewTimer(f.delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if f.status != 0 {
		if f.status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		fail(w, f.status)
		return
	}
	if !f.malformed && !f.drop {
		api.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, r)
	if f.drop {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler) // the server closes the connection without an answer
	}
	body := rec.Body.Bytes()
	if len(body) < 2 {
		body = []byte(garbage)
	} else {
		body = body[:len(body)/2]
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Del("Content-Length")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
