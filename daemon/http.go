package daemon

import (
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/tokend/tokend/rotation"
)

// Row is one token as `tokend status --json` and GET /api/v1/tokens show it. It holds no secret.
type Row struct {
	Name                string     `json:"name"`
	Provider            string     `json:"provider"`
	Kind                string     `json:"kind"`
	State               string     `json:"state"`
	Generation          int64      `json:"generation"`
	IssuedAt            *time.Time `json:"issued_at"`
	ExpiresAt           *time.Time `json:"expires_at"`
	RenewableUntil      *time.Time `json:"renewable_until"`
	NextAction          string     `json:"next_action"`
	NextActionAt        *time.Time `json:"next_action_at"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	LastError           string     `json:"last_error"`
	LastSuccessAt       *time.Time `json:"last_success_at"`
}

// Rows is the body of GET /api/v1/tokens and of `tokend status --json`.
type Rows struct {
	Tokens []Row `json:"tokens"`
}

func ptime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// RowsOf turns snapshots into rows.
func RowsOf(snaps []rotation.Snapshot) Rows {
	rows := Rows{Tokens: make([]Row, 0, len(snaps))}
	for _, s := range snaps {
		rows.Tokens = append(rows.Tokens, Row{
			Name: s.Name, Provider: s.Provider, Kind: s.Kind, State: s.State, Generation: s.Generation,
			IssuedAt: ptime(s.IssuedAt), ExpiresAt: ptime(s.ExpiresAt), RenewableUntil: ptime(s.RenewableUntil),
			NextAction: s.NextAction, NextActionAt: ptime(s.NextAt), ConsecutiveFailures: s.ConsecutiveFailures,
			LastError: s.LastError, LastSuccessAt: ptime(s.LastSuccess),
		})
	}
	return rows
}

func (d *Daemon) httpServer() *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{Registry: d.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ok, reasons := d.Ready(); !ok {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "reasons": reasons})
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"ready": true})
	})
	mux.HandleFunc("GET /api/v1/tokens", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, RowsOf(d.engine.Snapshots()))
	})
	d.uiRoutes(mux) // GET /, GET /tokens/{name}: the status page (ui.go)
	mux.HandleFunc("POST /api/v1/tokens/{name}/rotate", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if !d.engine.Owns(name) {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no token named " + name})
			return
		}
		now := r.URL.Query().Get("now") == "true"
		if err := d.RequestRotation(r.Context(), name, now); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]any{"token": name, "rotation": "requested", "bypass_backoff": now})
	})
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// serve serves srv on ln, with TLS and basic auth from an exporter-toolkit web config file when one is set.
func serve(ln net.Listener, srv *http.Server, webConfig string, logger *slog.Logger) error {
	noSocket := false
	addrs := []string{ln.Addr().String()}
	return web.Serve(ln, srv, &web.FlagConfig{WebListenAddresses: &addrs, WebSystemdSocket: &noSocket, WebConfigFile: &webConfig}, logger)
}
