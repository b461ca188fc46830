package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/lmittmann/tint"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/daemon"
	"github.com/tokend/tokend/metrics"
	"github.com/tokend/tokend/rotation"
	"github.com/tokend/tokend/store"
)

// Exit codes.
const (
	exitOK      = 0 // success
	exitFailure = 1 // failure at run time: Redis unreachable at start, a provider refuses check --online
	exitUsage   = 2 // usage error or invalid config
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `tokend keeps vendor API tokens alive.

Usage: tokend <command> [--config PATH] [flags]

Commands:
  run                 run the daemon
  check [--online]    validate the config; --online also authenticates to every provider
  status [--json]     one row per token: state, expiry, next action, failures
  plan                what tokend would do for each token, and when
  rotate NAME [--now] ask the running daemon to rotate NAME (--now bypasses failure backoff)
  demo                run tokend against simulated vendors, with nothing installed
  version             print the version

The config is --config PATH, else $TOKEND_CONFIG, else /etc/tokend/tokend.yaml.
Exit codes: 0 success, 1 failure at run time, 2 usage error or invalid config.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(rest, stderr)
	case "check":
		return cmdCheck(rest, stdout, stderr)
	case "status":
		return cmdStatus(rest, stdout, stderr, false)
	case "plan":
		return cmdStatus(rest, stdout, stderr, true)
	case "rotate":
		return cmdRotate(rest, stdout, stderr)
	case "demo":
		return cmdDemo(rest, stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "tokend %s (%s, %s)\n", version, revision(), runtime.Version())
		return exitOK
	}
	fmt.Fprintf(stderr, "tokend: unknown command %q\n\n%s", cmd, usage)
	return exitUsage
}

func revision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// flags returns a flag set with --config, erroring to stderr.
func flags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("tokend "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := os.Getenv("TOKEND_CONFIG")
	if def == "" {
		def = "/etc/tokend/tokend.yaml"
	}
	path := fs.String("config", def, "config file")
	return fs, path
}

// parse parses args, allowing flags after positional arguments (tokend rotate NAME --now).
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func loadConfig(path string, stderr io.Writer) (*config.Config, int) {
	cfg, err := daemon.LoadConfig(path)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid config:\n%s\n", path, indent(err.Error()))
		return nil, exitUsage
	}
	return cfg, exitOK
}

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }

// newLogger builds the logger of log.format: tint on a terminal, JSON otherwise (journald reads it). Its
// handler is a *switchHandler, so that a reload can change the format (setLogFormat).
func newLogger(c config.Log, w *os.File, level *slog.LevelVar) *slog.Logger {
	level.Set(daemon.ParseLevel(c.Level))
	return slog.New(newSwitchHandler(logHandler(c, w, level)))
}

// setLogFormat makes logger (from newLogger) write in c's format from now on. The level is the LevelVar's,
// which daemon.Reload sets.
func setLogFormat(logger *slog.Logger, c config.Log, w *os.File, level *slog.LevelVar) {
	if s, ok := logger.Handler().(*switchHandler); ok {
		s.Set(logHandler(c, w, level))
	}
}

func logHandler(c config.Log, w *os.File, level *slog.LevelVar) slog.Handler {
	format := c.Format
	if format == "" || format == "auto" {
		format = "json"
		if fi, err := w.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			format = "tint"
		}
	}
	switch format {
	case "tint":
		return tint.NewTextHandler(w, &tint.Options{Level: level, TimeFormat: time.TimeOnly})
	case "text":
		return slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})
	}
	return slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
}

func cmdRun(args []string, stderr io.Writer) int {
	fs, path := flags("run", stderr)
	if _, err := parse(fs, args); err != nil {
		return exitUsage
	}
	cfg, code := loadConfig(*path, stderr)
	if cfg == nil {
		return code
	}
	level := new(slog.LevelVar)
	logger := newLogger(cfg.Log, os.Stderr, level)
	d, err := daemon.New(cfg, daemon.Options{
		ConfigPath: *path, Logger: logger, Level: level,
		BuildInfo: metrics.BuildInfo{Version: version, Revision: revision(), GoVersion: runtime.Version()},
	})
	if err != nil {
		logger.Error("starting tokend", "err", err)
		return exitFailure
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if d.Reload() == nil { // a failure is logged, and kept in metrics and STATUS=
					setLogFormat(logger, d.Config().Log, os.Stderr, level)
				}
			}
		}
	}()
	if err := d.Run(ctx); err != nil {
		logger.Error("tokend stopped", "err", err)
		return exitFailure
	}
	return exitOK
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs, path := flags("check", stderr)
	online := fs.Bool("online", false, "also authenticate to every provider")
	if _, err := parse(fs, args); err != nil {
		return exitUsage
	}
	cfg, err := config.Load(*path)
	if err == nil {
		err = daemon.Validate(cfg)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	if *online {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		if err := daemon.CheckOnline(ctx, cfg); err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailure
		}
	}
	fmt.Fprintf(stdout, "%s: ok (%d providers, %d tokens)\n", *path, len(cfg.Providers), len(cfg.Tokens))
	return exitOK
}

// readState reads every configured token's state without the state key (secrets stay sealed).
func readState(ctx context.Context, cfg *config.Config) (*store.Store, map[string]*store.State, error) {
	rdb, err := daemon.NewRedis(cfg.Redis)
	if err != nil {
		return nil, nil, err
	}
	st := store.NewReader(rdb, cfg.Redis.KeyPrefix)
	names := make([]string, 0, len(cfg.Tokens))
	for _, t := range cfg.Tokens {
		names = append(names, t.Name)
	}
	states, err := st.Load(ctx, names)
	if err != nil {
		rdb.Close()
		return nil, nil, err
	}
	return st, states, nil
}

func cmdStatus(args []string, stdout, stderr io.Writer, plan bool) int {
	name := "status"
	if plan {
		name = "plan"
	}
	fs, path := flags(name, stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(fs, args); err != nil {
		return exitUsage
	}
	cfg, code := loadConfig(*path, stderr)
	if cfg == nil {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, states, err := readState(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "tokend %s: %v\n", name, err)
		return exitFailure
	}
	defer st.Client().Close()
	now := time.Now()
	var snaps []rotation.Snapshot
	for _, t := range cfg.Tokens {
		s := rotation.SnapshotOf(t.Name, t.Provider, t.Kind, states[t.Name], now)
		if plan {
			p := planOf(now, cfg, t, states[t.Name])
			s.NextAction, s.NextAt = string(p.Action), p.At
		}
		snaps = append(snaps, s)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(daemon.RowsOf(snaps))
		return exitOK
	}
	if plan {
		sort.SliceStable(snaps, func(i, j int) bool { return snaps[i].NextAt.Before(snaps[j].NextAt) })
	}
	printTable(stdout, snaps, now)
	return exitOK
}

func printTable(w io.Writer, snaps []rotation.Snapshot, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOKEN\tPROVIDER\tKIND\tSTATE\tGEN\tEXPIRES IN\tRENEWABLE UNTIL\tNEXT ACTION\tIN\tFAILURES\tLAST ERROR")
	for _, s := range snaps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%d\t%s\n", s.Name, s.Provider, s.Kind, s.State, s.Generation,
			until(s.ExpiresAt, now, "never"), until(s.RenewableUntil, now, "-"), dash(s.NextAction), until(s.NextAt, now, "-"),
			s.ConsecutiveFailures, dash(trim(s.LastError, 60)))
	}
	tw.Flush()
}

func until(t, now time.Time, none string) string {
	if t.IsZero() {
		return none
	}
	d := t.Sub(now)
	if d < 0 {
		return "now"
	}
	return human(d)
}

// human prints a duration the way an operator reads it: 3d4h, 5h10m, 4m30s, 12s.
func human(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd%dh", d/(24*time.Hour), (d%(24*time.Hour))/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%dm", d/time.Hour, (d%time.Hour)/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%ds", d/time.Minute, (d%time.Minute)/time.Second)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func trim(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}

func cmdRotate(args []string, stdout, stderr io.Writer) int {
	fs, path := flags("rotate", stderr)
	now := fs.Bool("now", false, "bypass failure backoff")
	pos, err := parse(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: tokend rotate NAME [--now] [--config PATH]")
		return exitUsage
	}
	cfg, code := loadConfig(*path, stderr)
	if cfg == nil {
		return code
	}
	name := pos[0]
	found := false
	for _, t := range cfg.Tokens {
		found = found || t.Name == name
	}
	if !found {
		fmt.Fprintf(stderr, "tokend rotate: no token named %q in %s\n", name, *path)
		return exitUsage
	}
	rdb, err := daemon.NewRedis(cfg.Redis)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailure
	}
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := store.NewReader(rdb, cfg.Redis.KeyPrefix).RequestRotation(ctx, name, time.Now(), *now); err != nil {
		fmt.Fprintf(stderr, "tokend rotate: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "rotation of %s requested; the daemon acts on it at once (see tokend status)\n", name)
	return exitOK
}
