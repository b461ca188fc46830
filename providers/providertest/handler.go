package providertest

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tokend/tokend/providers"
)

// maxBody bounds request bodies the handler reads.
const maxBody = 64 << 10

// NewHandler serves f as a small JSON vendor API (package httpprov is its client), strict about methods,
// content types and credentials:
//
//	POST   /tokens              {"name": "..."}            -> 201 token with "secret" (and "refresh" when renewable)
//	POST   /tokens/{id}/renew   Authorization: Bearer <refresh> -> 200 token with the new secret (and refresh)
//	GET    /tokens/{id}                                    -> 200 token without secrets, 404 when gone
//	DELETE /tokens/{id}                                    -> 204, 404 when gone
//	GET    /verify              Authorization: Bearer <secret>  -> 200 {"ok": true}, 401 when not valid now
//	GET    /orphans?name=&keep=id1,id2&since=RFC3339       -> 200 {"tokens": [token without secrets]}
//	POST   /bootstrap           Authorization: Bearer <secret>  -> 200 token with secret and refresh
//	POST   /control/fail?op=&status=&n=                    -> 204: the next n calls of op ("" any) answer status
//	POST   /control/malformed?op=&n=                       -> 204: the next n calls of op act, then answer 200
//	                                                          with a truncated body (Fake.LoseNext)
//
// A token is {"id", "name", "created_at", "issued_at", "expires_at", "renewable_until"} with RFC 3339 times,
// null when absent, plus "secret" and "refresh" where listed. Errors are {"code", "message"} with the status of
// the Fake's *providers.APIError (429 with Retry-After); a lost answer (LoseNext) is a 200 with a truncated
// body. The handler calls the Fake's operations, so FailNext, LoseNext and Hook apply to HTTP requests too.
func NewHandler(f *Fake) http.Handler {
	h := &handler{f: f}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /tokens", h.create)
	mux.HandleFunc("POST /tokens/{id}/renew", h.renew)
	mux.HandleFunc("GET /tokens/{id}", h.get)
	mux.HandleFunc("DELETE /tokens/{id}", h.delete)
	mux.HandleFunc("GET /verify", h.verify)
	mux.HandleFunc("GET /orphans", h.orphans)
	mux.HandleFunc("POST /bootstrap", h.bootstrap)
	mux.HandleFunc("POST /control/fail", h.controlFail)
	mux.HandleFunc("POST /control/malformed", h.controlMalformed)
	return mux
}

type handler struct{ f *Fake }

// wireToken is a token on the handler's wire.
type wireToken struct {
	ID             string     `json:"id"`
	Name           string     `json:"name"`
	Secret         string     `json:"secret,omitempty"`
	Refresh        string     `json:"refresh,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	IssuedAt       time.Time  `json:"issued_at"`
	ExpiresAt      *time.Time `json:"expires_at"`
	RenewableUntil *time.Time `json:"renewable_until"`
}

func toWire(t providers.Token) wireToken {
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		t = t.UTC()
		return &t
	}
	return wireToken{
		ID: t.ID, Name: t.Name, Secret: t.Secret.Reveal(), Refresh: t.Refresh.Reveal(),
		CreatedAt: t.CreatedAt.UTC(), IssuedAt: t.IssuedAt.UTC(),
		ExpiresAt: opt(t.ExpiresAt), RenewableUntil: opt(t.RenewableUntil),
	}
}

func (h *handler) create(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json")
		return
	}
	var body struct {
		Name string `json:"name"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "body must be {\"name\": string}")
		return
	}
	if body.Name == "" {
		writeError(w, http.StatusBadRequest, "bad_request", "name is required")
		return
	}
	tok, err := h.f.Create(r.Context(), providers.CreateRequest{VendorName: body.Name})
	if err != nil {
		writeFakeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, toWire(tok))
}

func (h *handler) renew(w http.ResponseWriter, r *http.Request) {
	refresh, ok := bearer(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "unauthorized", "Authorization: Bearer <refresh> required")
		return
	}
	tok, err := h.f.renew(r.Context(), r.PathValue("id"), refresh)
	if err != nil {
		writeFakeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toWire(tok))
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	tok, ok, err := h.f.lookup(r.Context(), r.PathValue("id"))
	switch {
	case err != nil:
		writeFakeError(w, err)
	case !ok:
		writeError(w, http.StatusNotFound, "not_found", "no such token")
	default:
		writeJSON(w, http.StatusOK, toWire(tok))
	}
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request) {
	existed, err := h.f.revoke(r.Context(), r.PathValue("id"))
	switch {
	case err != nil:
		writeFakeError(w, err)
	case !existed:
		writeError(w, http.StatusNotFound, "not_found", "no such token")
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func (h *handler) verify(w http.ResponseWriter, r *http.Request) {
	secret, ok := bearer(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "unauthorized", "Authorization: Bearer <token> required")
		return
	}
	if err := h.f.verify(r.Context(), secret); err != nil {
		writeFakeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func (h *handler) orphans(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := providers.CreateRequest{VendorName: q.Get("name")}
	if req.VendorName == "" {
		writeError(w, http.StatusBadRequest, "bad_request", "name is required")
		return
	}
	if keep := q.Get("keep"); keep != "" {
		req.Keep = strings.Split(keep, ",")
	}
	if since := q.Get("since"); since != "" {
		t, err := time.Parse(time.RFC3339Nano, since)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "since must be an RFC 3339 time")
			return
		}
		req.StartedAt = t
	}
	found, err := h.f.Orphans(r.Context(), req)
	if err != nil {
		writeFakeError(w, err)
		return
	}
	out := struct {
		Tokens []wireToken `json:"tokens"`
	}{Tokens: []wireToken{}}
	for _, t := range found {
		out.Tokens = append(out.Tokens, toWire(t))
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) bootstrap(w http.ResponseWriter, r *http.Request) {
	secret, ok := bearer(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "unauthorized", "Authorization: Bearer <token> required")
		return
	}
	tok, err := h.f.Bootstrap(r.Context(), providers.NewSecret(secret))
	if err != nil {
		writeFakeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toWire(tok))
}

func (h *handler) controlFail(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	status, err := strconv.Atoi(q.Get("status"))
	if err != nil || status < 400 || status > 599 {
		writeError(w, http.StatusBadRequest, "bad_request", "status must be 400-599")
		return
	}
	n, ok := count(q.Get("n"))
	if !ok {
		writeError(w, http.StatusBadRequest, "bad_request", "n must be a positive integer")
		return
	}
	op := q.Get("op")
	h.f.FailNext(op, StatusError(op, status), n)
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) controlMalformed(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n, ok := count(q.Get("n"))
	if !ok {
		writeError(w, http.StatusBadRequest, "bad_request", "n must be a positive integer")
		return
	}
	h.f.LoseNext(q.Get("op"), n)
	w.WriteHeader(http.StatusNoContent)
}

// count parses n, defaulting to 1.
func count(s string) (int, bool) {
	if s == "" {
		return 1, true
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n > 0
}

func bearer(r *http.Request) (string, bool) {
	v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return v, ok && v != ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"code": code, "message": msg})
}

// writeFakeError answers with what the Fake's err means on the wire: its APIError's status, code and
// message; a truncated 200 body for a lost answer; 503 when the request's context ended.
func writeFakeError(w http.ResponseWriter, err error) {
	var ae *providers.APIError
	switch {
	case providers.IsAmbiguous(err):
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"id": "tok-`)
	case errors.As(err, &ae):
		status := ae.Status
		if status == 0 {
			status = http.StatusInternalServerError
		}
		if ae.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((ae.RetryAfter+time.Second-1)/time.Second)))
		}
		code := ae.Code
		if code == "" {
			code = strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "_"))
		}
		writeError(w, status, code, ae.Message)
	default:
		writeError(w, http.StatusServiceUnavailable, "unavailable", "request not served")
	}
}
