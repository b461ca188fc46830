package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/demo"
	"github.com/tokend/tokend/metrics"
	"github.com/tokend/tokend/rotation"
)

// How often the demo redraws its table on a terminal, and prints it when stdout is not one.
const (
	demoRedraw     = time.Second
	demoPlainEvery = 5 * time.Second
	demoLastEvents = 10 // events shown under the table on a terminal
)

func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tokend demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", config.DefaultListen, "address of /metrics and /api/v1/tokens")
	duration := fs.Duration("duration", 0, "stop by itself after this long (0: run until Ctrl-C)")
	faults := fs.Bool("faults", false, fmt.Sprintf("make the simulated vendors fail %.0f%% of requests with 5xx and %.0f%% with 429",
		demo.ErrorRate*100, demo.RateLimitRate*100))
	keep := fs.Bool("keep", false, "keep the demo directory (config, credentials, token files, log) when the demo ends")
	pos, err := parse(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(pos) > 0 || *duration < 0 {
		fmt.Fprintln(stderr, "usage: tokend demo [--listen 127.0.0.1:9464] [--duration 40s] [--faults] [--keep]")
		return exitUsage
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			fmt.Fprintf(stderr, "tokend demo: %s is already in use (is tokend running?); choose another address with --listen, e.g. --listen 127.0.0.1:9465\n", *listen)
		} else {
			fmt.Fprintf(stderr, "tokend demo: cannot listen on %s (--listen): %v\n", *listen, err)
		}
		return exitFailure
	}
	d, err := demo.New(demo.Options{
		Listener: ln, Faults: *faults, Keep: *keep,
		BuildInfo: metrics.BuildInfo{Version: version, Revision: revision(), GoVersion: runtime.Version()},
	})
	if err != nil {
		fmt.Fprintf(stderr, "tokend demo: %v\n", err)
		return exitFailure
	}
	defer d.Close()
	// The simulators' HTTP servers log through the standard logger: keep that off the terminal.
	prevLog := log.Writer()
	log.SetOutput(d.LogWriter())
	defer log.SetOutput(prevLog)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	v := &demoView{d: d, out: stdout, tty: isTerminal(stdout), faults: *faults, keep: *keep, start: time.Now(), counts: map[string]int{}}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	v.header()
	if v.tty {
		v.update(time.Now())
	}
	tick := time.NewTicker(demoRedraw)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return v.finish(err)
		case now := <-tick.C:
			v.update(now)
		}
	}
}

// isTerminal reports whether w is a character device (a terminal), where the table is redrawn in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// demoView prints what the demo does: the status table and the changes between two looks.
type demoView struct {
	d      *demo.Demo
	out    io.Writer
	tty    bool
	faults bool
	keep   bool
	start  time.Time

	last      []rotation.Snapshot
	events    []demo.Event // the latest, for the terminal view
	counts    map[string]int
	lastPlain time.Time
}

func (v *demoView) intro(w io.Writer) {
	addr := v.d.Addr()
	if host, port, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			addr = net.JoinHostPort("127.0.0.1", port) // listening on every address: show one that works
		}
	}
	fmt.Fprintf(w, "tokend demo: %d tokens at 4 simulated vendors (VCD, Astra, Commvault, Huawei IDC), lifetimes of seconds", len(v.d.Config().Tokens))
	if v.faults {
		fmt.Fprintf(w, ", with faults (%.0f%% 5xx, %.0f%% 429)", demo.ErrorRate*100, demo.RateLimitRate*100)
	}
	fmt.Fprintf(w, "\n  metrics  http://%s/metrics\n  API      http://%s/api/v1/tokens\n", addr, addr)
	fmt.Fprintf(w, "  tokens   %s%c  (the files programs read)\n", v.d.TokensDir, os.PathSeparator)
	fmt.Fprintf(w, "  config   %s  (try: tokend status --config %s)\n", v.d.ConfigPath, v.d.ConfigPath)
	fmt.Fprintf(w, "  log      %s\n", v.d.LogPath)
}

func (v *demoView) header() {
	if v.tty {
		fmt.Fprint(v.out, "\x1b[2J") // clear once; frames then overwrite in place
		return
	}
	v.intro(v.out)
	fmt.Fprintln(v.out, "Stop with Ctrl-C.")
}

// update takes a look at the daemon: notes changes, and draws the table.
func (v *demoView) update(now time.Time) {
	snaps := v.d.Snapshots()
	evs := demo.Changes(v.last, snaps, now)
	v.last = snaps
	for _, e := range evs {
		v.counts[e.What]++
	}
	if v.tty {
		v.events = append(v.events, evs...)
		if len(v.events) > demoLastEvents {
			v.events = v.events[len(v.events)-demoLastEvents:]
		}
		v.frame(snaps, now)
		return
	}
	for _, e := range evs {
		fmt.Fprintln(v.out, e)
	}
	if now.Sub(v.lastPlain) >= demoPlainEvery {
		v.lastPlain = now
		fmt.Fprintf(v.out, "--- %s (%s in) ---\n", now.Format(time.TimeOnly), human(now.Sub(v.start).Round(time.Second)))
		printTable(v.out, snaps, now)
	}
}

// frame redraws the whole screen in place: home, each line cleared to its end, the rest of the screen
// cleared, so nothing flickers.
func (v *demoView) frame(snaps []rotation.Snapshot, now time.Time) {
	var b bytes.Buffer
	v.intro(&b)
	fmt.Fprintf(&b, "\n%s  running %s  (Ctrl-C stops)\n\n", now.Format(time.TimeOnly), human(now.Sub(v.start).Round(time.Second)))
	printTable(&b, snaps, now)
	fmt.Fprintf(&b, "\n%s; latest:\n", v.tally())
	for _, e := range v.events {
		fmt.Fprintln(&b, e)
	}
	fmt.Fprint(v.out, "\x1b[H"+strings.ReplaceAll(b.String(), "\n", "\x1b[K\n")+"\x1b[J")
}

func (v *demoView) tally() string {
	return fmt.Sprintf("%d renewed, %d recreated, %d revoked, %d failed attempts",
		v.counts[demo.Renewed], v.counts[demo.Recreated], v.counts[demo.Revoked], v.counts[demo.Failed])
}

// finish prints the final table, the tally and what the vendors hold, and returns the exit code.
func (v *demoView) finish(runErr error) int {
	now := time.Now()
	snaps := v.d.Snapshots()
	for _, e := range demo.Changes(v.last, snaps, now) {
		v.counts[e.What]++
		if !v.tty {
			fmt.Fprintln(v.out, e)
		}
	}
	if v.tty {
		v.frame(snaps, now)
	} else {
		fmt.Fprintf(v.out, "--- %s (end) ---\n", now.Format(time.TimeOnly))
		printTable(v.out, snaps, now)
	}
	if runErr != nil {
		fmt.Fprintf(v.out, "tokend demo: the daemon stopped: %v (log: %s)\n", runErr, v.d.LogPath)
		return exitFailure
	}
	fmt.Fprintf(v.out, "\ndemo over after %s: %s\n", human(now.Sub(v.start).Round(time.Second)), v.tally())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if a, err := v.d.Audit(ctx); err != nil {
		fmt.Fprintf(v.out, "checking the vendors: %v\n", err)
	} else {
		fmt.Fprintf(v.out, "at the vendors: %d live tokens: %d current, %d superseded in their grace period, %d stray (superseded and not revoked)\n",
			a.Live, a.Current, a.Grace, a.Stray)
	}
	if v.keep {
		fmt.Fprintf(v.out, "kept %s\n", v.d.Dir)
	}
	return exitOK
}
