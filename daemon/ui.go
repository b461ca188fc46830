package daemon

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tokend/tokend/rotation"
	"github.com/tokend/tokend/store"
)

// The status page: GET / lists every token, most urgent first; GET /tokens/{name} shows one token and its
// recent operations. Server-rendered, no JavaScript, no external assets, never a secret (a Snapshot holds
// none, and the error texts in it and in the history are scrubbed by the engine). It is served by the same
// server as /metrics, behind the same TLS and basic auth.

// RunbookURL is where the page's runbook links point (the base of the alerts' runbook_url); failing rows
// link to the section of the alert that fires for them.
const RunbookURL = "https://github.com/tokend/tokend/blob/main/docs/runbook.md"

// maxRows bounds the index: with 100,000 tokens the whole table would be a hundred megabytes of HTML. The
// rows kept are the most urgent ones.
const maxRows = 1000

//go:embed ui/*.html ui/tokend.css
var uiFiles embed.FS

var (
	uiPages = template.Must(template.New("ui").Funcs(template.FuncMap{
		"timecell": timeCell,
		"abs":      absTime,
		"short":    shorten,
		"ms":       millis,
		"tokpath":  func(name string) string { return "/tokens/" + url.PathEscape(name) },
	}).ParseFS(uiFiles, "ui/*.html"))
	uiCSS = func() []byte {
		b, err := uiFiles.ReadFile("ui/tokend.css")
		if err != nil {
			panic(err)
		}
		return b
	}()
)

// uiHeader is the page's header line.
type uiHeader struct {
	Instance string
	Version  string
	RedisUp  bool
	ReloadOK bool
	ReloadAt time.Time
	Now      time.Time
	Refresh  int // seconds between automatic reloads of the page, 0 for none
}

// statusUI renders the pages from what it is given, so tests can feed it fixed snapshots.
type statusUI struct {
	snapshots func() []rotation.Snapshot
	history   func(ctx context.Context, name string) ([]store.Event, error)
	header    func() uiHeader
	runbook   string
}

// uiRoutes registers the status page on mux.
func (d *Daemon) uiRoutes(mux *http.ServeMux) {
	ui := &statusUI{
		snapshots: d.engine.Snapshots,
		history: func(ctx context.Context, name string) ([]store.Event, error) {
			return d.store.History(ctx, name, store.HistoryLen)
		},
		header:  d.uiHeader,
		runbook: RunbookURL,
	}
	ui.register(mux)
}

func (d *Daemon) uiHeader() uiHeader {
	h := uiHeader{Instance: d.store.Instance(), Version: d.opts.BuildInfo.Version, RedisUp: d.redisUp.Load(), Now: time.Now().UTC()}
	if h.Version == "" {
		h.Version = "unknown"
	}
	if r := d.lastReload.Load(); r != nil {
		h.ReloadOK, h.ReloadAt = r.ok, r.at
	}
	return h
}

func (u *statusUI) register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", u.index)
	mux.HandleFunc("GET /tokens/{name}", u.token)
	mux.HandleFunc("GET /ui/tokend.css", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "max-age=300")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(uiCSS)
	})
}

// uiRow is one token row: its snapshot and the runbook anchor for a token that needs a person.
type uiRow struct {
	rotation.Snapshot
	Anchor string
}

type refreshChoice struct {
	Seconds int
	Label   string
	Href    string
}

type uiPage struct {
	Title, Subtitle string
	Header          uiHeader
	Runbook         string
	RefreshChoices  []refreshChoice

	// index
	Summary string
	Rows    []uiRow

	// token
	Name         string
	Token        *rotation.Snapshot
	Anchor       string
	History      []store.Event
	HistoryError string
}

func (u *statusUI) page(r *http.Request, title, subtitle string) uiPage {
	h := u.header()
	h.Refresh = refreshOf(r.URL.Query().Get("refresh"))
	p := uiPage{Title: title, Subtitle: subtitle, Header: h, Runbook: u.runbook}
	for _, c := range []struct {
		s int
		l string
	}{{0, "off"}, {10, "10 s"}, {60, "1 min"}} {
		q := url.Values{}
		if c.s > 0 {
			q.Set("refresh", strconv.Itoa(c.s))
		}
		href := r.URL.Path
		if len(q) > 0 {
			href += "?" + q.Encode()
		}
		p.RefreshChoices = append(p.RefreshChoices, refreshChoice{Seconds: c.s, Label: c.l, Href: href})
	}
	return p
}

func (u *statusUI) index(w http.ResponseWriter, r *http.Request) {
	p := u.page(r, "tokend", "")
	snaps := u.snapshots()
	sortByUrgency(snaps)
	counts := map[string]int{}
	for i, s := range snaps {
		if i < maxRows {
			p.Rows = append(p.Rows, uiRow{Snapshot: s, Anchor: runbookAnchor(s)})
		}
		counts[s.State]++
	}
	p.Summary = summary(len(snaps), counts)
	if len(snaps) > maxRows {
		p.Summary += fmt.Sprintf(" Showing the %d most urgent; /api/v1/tokens lists them all.", maxRows)
	}
	if n := counts[rotation.StateFailed] + counts[rotation.StateExpired]; n > 0 {
		p.Title = fmt.Sprintf("(%d need attention) tokend", n)
	}
	writeHTML(w, http.StatusOK, "index", p)
}

func (u *statusUI) token(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	p := u.page(r, name+" · tokend", name)
	p.Name = name
	for _, s := range u.snapshots() {
		if s.Name == name {
			p.Token = &s
			break
		}
	}
	if p.Token == nil {
		p.Title = "no such token · tokend"
		writeHTML(w, http.StatusNotFound, "token", p)
		return
	}
	p.Anchor = runbookAnchor(*p.Token)
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	hist, err := u.history(ctx, name)
	if err != nil {
		p.HistoryError = "could not read it from Redis"
	}
	p.History = hist
	writeHTML(w, http.StatusOK, "token", p)
}

// writeHTML renders a whole page before sending it, so a template error is a 500 and not half a page.
func writeHTML(w http.ResponseWriter, code int, name string, p uiPage) {
	var buf bytes.Buffer
	if err := uiPages.ExecuteTemplate(&buf, name, p); err != nil {
		http.Error(w, "rendering the page failed", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// refreshOf parses ?refresh=N: N seconds between reloads, at least 5 and at most an hour; anything else
// means no automatic reload.
func refreshOf(v string) int {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0
	}
	return min(max(n, 5), 3600)
}

// urgency ranks states: what needs a person first, then tokens whose rotation is failing and being retried.
func urgency(s rotation.Snapshot) int {
	switch {
	case s.State == rotation.StateFailed || s.State == rotation.StateExpired:
		return 0
	case s.ConsecutiveFailures > 0:
		return 1
	}
	return 2
}

// sortByUrgency orders snapshots for people: failed and expired tokens first, then tokens failing and
// retrying, then by soonest expiry (tokens that never expire last), then by name.
func sortByUrgency(snaps []rotation.Snapshot) {
	sort.SliceStable(snaps, func(i, j int) bool {
		a, b := snaps[i], snaps[j]
		if ua, ub := urgency(a), urgency(b); ua != ub {
			return ua < ub
		}
		if az, bz := a.ExpiresAt.IsZero(), b.ExpiresAt.IsZero(); az != bz {
			return bz
		}
		if !a.ExpiresAt.Equal(b.ExpiresAt) {
			return a.ExpiresAt.Before(b.ExpiresAt)
		}
		return a.Name < b.Name
	})
}

// runbookAnchor is the runbook section (docs/runbook.md, one per alert) for a token that needs a person or
// is failing, "" for one that is fine.
func runbookAnchor(s rotation.Snapshot) string {
	switch {
	case s.State == rotation.StateExpired:
		return "#tokendtokenexpired"
	case s.State == rotation.StateFailed:
		return "#tokendtokenfailed"
	case s.ConsecutiveFailures > 0:
		return "#tokendrotationfailing"
	}
	return ""
}

func summary(total int, counts map[string]int) string {
	if total == 0 {
		return "No tokens."
	}
	word := "tokens"
	if total == 1 {
		word = "token"
	}
	var parts []string
	for _, st := range []string{rotation.StateFailed, rotation.StateExpired, rotation.StateRotating, rotation.StateCurrent} {
		if counts[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
		}
	}
	return fmt.Sprintf("%d %s: %s.", total, word, strings.Join(parts, ", "))
}

// timeCell is a <time> element showing t relative to now, with the exact time on hover; empty (escaped)
// when t is zero.
func timeCell(now, t time.Time, empty string) template.HTML {
	if t.IsZero() {
		if empty == "" {
			return ""
		}
		return template.HTML(`<span class="none">` + template.HTMLEscapeString(empty) + `</span>`)
	}
	return template.HTML(fmt.Sprintf(`<time datetime="%s" title="%s">%s</time>`,
		t.UTC().Format(time.RFC3339), absTime(t), template.HTMLEscapeString(relTime(now, t))))
}

func absTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// relTime says when t is from now: "in 3h 20m", "5m 10s ago", "now".
func relTime(now, t time.Time) string {
	d := t.Sub(now)
	switch {
	case d > -time.Second && d < time.Second:
		return "now"
	case d > 0:
		return "in " + human(d)
	}
	return human(-d) + " ago"
}

// human writes d with its two largest units: "3d 4h", "2h 5m", "4m 10s", "12s".
func human(d time.Duration) string {
	switch {
	case d >= 24*time.Hour:
		d = d.Round(time.Hour)
	case d >= time.Hour:
		d = d.Round(time.Minute)
	default:
		d = d.Round(time.Second)
	}
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	h := d / time.Hour
	d -= h * time.Hour
	m := d / time.Minute
	s := (d - m*time.Minute) / time.Second
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %dh", days, h)
	case h > 0:
		return fmt.Sprintf("%dh %dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm %ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}

// shorten keeps a table cell readable; the whole text is in the cell's title and on the token's page.
func shorten(s string) string {
	const limit = 160
	if r := []rune(s); len(r) > limit {
		return string(r[:limit-1]) + "…"
	}
	return s
}

func millis(ms int64) string {
	if ms < 1000 {
		return fmt.Sprintf("%d ms", ms)
	}
	return fmt.Sprintf("%.1f s", float64(ms)/1000)
}
