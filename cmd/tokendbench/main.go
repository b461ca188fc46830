// Command tokendbench measures tokend at scale (DESIGN.md section 9) against a real Redis and a zero-latency
// in-memory vendor (providertest.Fake), and prints the figures docs/benchmarks.md publishes.
//
//	go run ./cmd/tokendbench                 # N = 1k, 10k, 100k; 60 s of idle CPU each (about 10 minutes)
//	go run ./cmd/tokendbench -idle 20s       # the shorter documented mode
//	go run ./cmd/tokendbench -smoke          # seconds: CI runs it so the bench cannot rot
//
// For every N the command runs two fresh child processes of itself, each under its own Redis key prefix:
//
//   - work: times LoadAll on an empty state (every token gets a create), then creates every token with its
//     vendor clock pinned so that their renewals fall due at exactly -rate per second, then runs the real
//     scheduler.Loop and Engine.Work through that stream (lateness p50/p99), then moves its clock past
//     every due time and renews the rest at full speed (rotations per second, Redis round trips per
//     rotation from a go-redis hook and from INFO commandstats), then scrapes /metrics.
//   - restart: a new process over the state the first one left: time from exec to every token scheduled,
//     RSS and Go heap per token, idle CPU with the scheduler loop running, then one /metrics scrape.
//
// In the same run redis-benchmark measures the commands a rotation uses at the same concurrency, so the
// rotation rate is also given as a share of what Redis allows for the same round trips. Keys are deleted
// afterwards. Exit status 1 when a figure could not be measured or a sanity check failed (a token not
// scheduled, a rotation that did not happen, work done while idle).
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tokend/tokend/store/storetest"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// opts are the flags; the parent passes them on to its children.
type opts struct {
	redisURL   string
	sizes      string
	n          int
	idle       time.Duration
	lateness   time.Duration
	rate       int
	workers    int
	providers  int
	fullMax    time.Duration
	smoke      bool
	role       string
	configPath string
	prefix     string
	base       int64 // Unix ms of the first renewal of the lateness stream
	t0         int64 // Unix ns just before the child was started
	profileDir string
	jsonOut    string
	rbRequests int
	noRB       bool
	// freeOSMemory makes the restart child call debug.FreeOSMemory after start-up (a proposed fix).
	freeOSMemory bool
}

func run(args []string, stdout, stderr io.Writer) int {
	var o opts
	fs := flag.NewFlagSet("tokendbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := os.Getenv("TOKEND_TEST_REDIS_URL")
	if def == "" {
		def = "redis://127.0.0.1:6379/0"
	}
	fs.StringVar(&o.redisURL, "redis", def, "Redis URL (default $TOKEND_TEST_REDIS_URL or 127.0.0.1:6379)")
	fs.StringVar(&o.sizes, "n", "1000,10000,100000", "numbers of tokens, comma-separated")
	fs.DurationVar(&o.idle, "idle", 60*time.Second, "how long idle CPU is measured")
	fs.DurationVar(&o.lateness, "lateness", 10*time.Second, "how long the due stream runs (capped at N/rate)")
	fs.IntVar(&o.rate, "rate", 1000, "tokens due per second in the lateness phase")
	fs.IntVar(&o.workers, "workers", 16, "scheduler workers (scheduler.Loop's default is 16)")
	fs.IntVar(&o.providers, "providers", 16, "in-memory vendors the tokens are spread over")
	fs.DurationVar(&o.fullMax, "full-max", 120*time.Second, "longest the full-speed phase runs")
	fs.BoolVar(&o.smoke, "smoke", false, "seconds-long run for CI: N=300, 2s idle, small redis-benchmark")
	fs.StringVar(&o.profileDir, "profile", "", "directory for CPU and heap profiles of each phase")
	fs.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to this file")
	fs.IntVar(&o.rbRequests, "rb-requests", 200000, "requests per redis-benchmark test")
	fs.BoolVar(&o.noRB, "no-redis-benchmark", false, "skip redis-benchmark")
	fs.BoolVar(&o.freeOSMemory, "free-os-memory", false, "experiment: debug.FreeOSMemory() once the restart child has started")
	// Child flags.
	fs.StringVar(&o.role, "role", "", "internal: work | restart")
	fs.StringVar(&o.configPath, "config", "", "internal: the config file of the tokens")
	fs.IntVar(&o.n, "size", 0, "internal: tokens in this child")
	fs.StringVar(&o.prefix, "prefix", "", "internal: key prefix")
	fs.Int64Var(&o.base, "base", 0, "internal: first due time (Unix ms)")
	fs.Int64Var(&o.t0, "t0", 0, "internal: start time (Unix ns)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.smoke {
		o.sizes, o.idle, o.lateness, o.rbRequests, o.fullMax = "300", 2*time.Second, time.Second, 5000, 30*time.Second
	}
	if o.role != "" {
		return child(o, stdout, stderr)
	}
	if err := parent(o, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "tokendbench:", err)
		return 1
	}
	return 0
}

// Result is what one size measured; the two children fill different fields (omitzero: each child's JSON
// leaves the other's fields alone when merged).
type Result struct {
	N int `json:"n"`
	// Load is the 1-minute load average before and after this size ran: the figures are only as good as the
	// machine was quiet.
	Load string `json:"load,omitzero"`

	// work child
	StartEmptyMS      float64            `json:"start_empty_ms,omitzero"`   // exec to every token scheduled, no state in Redis
	LoadAllEmptyMS    float64            `json:"loadall_empty_ms,omitzero"` // of which LoadAll
	PopulatePerSec    float64            `json:"populate_per_sec,omitzero"` // first creates, direct Work calls, one worker per vendor
	LatenessSamples   int                `json:"lateness_samples,omitzero"`
	LatenessP50MS     float64            `json:"lateness_p50_ms,omitzero"` // scheduler lag: handed to a worker − due
	LatenessP99MS     float64            `json:"lateness_p99_ms,omitzero"`
	LatenessMaxMS     float64            `json:"lateness_max_ms,omitzero"`
	DoneP50MS         float64            `json:"done_p50_ms,omitzero"` // rotation finished − due
	DoneP99MS         float64            `json:"done_p99_ms,omitzero"`
	LatenessRotations int                `json:"lateness_rotations,omitzero"`
	FullRotations     int                `json:"full_rotations,omitzero"`
	FullPerSec        float64            `json:"full_per_sec,omitzero"`
	RTTPerRotation    float64            `json:"rtt_per_rotation,omitzero"`      // engine and loop, from the go-redis hook
	LoopRTTPerRot     float64            `json:"loop_rtt_per_rotation,omitzero"` // of which the scheduler loop's index reads
	CmdsPerRotation   float64            `json:"cmds_per_rotation,omitzero"`
	RTTByKind         map[string]float64 `json:"rtt_by_kind,omitzero"`         // per rotation: evalsha, hgetall, pipeline, ...
	CommandStats      map[string]float64 `json:"commandstats,omitzero"`        // INFO commandstats calls per rotation
	CPUPerRotationUS  float64            `json:"cpu_per_rotation_us,omitzero"` // tokend process CPU
	RedisCPUPerRotUS  float64            `json:"redis_cpu_per_rotation_us,omitzero"`
	DirectRotations   int                `json:"direct_rotations,omitzero"` // renewals by goroutines calling Work
	DirectPerSec      float64            `json:"direct_per_sec,omitzero"`   // without the scheduler loop
	DirectRTTPerRot   float64            `json:"direct_rtt_per_rotation,omitzero"`
	DirectCPUPerRotUS float64            `json:"direct_cpu_per_rotation_us,omitzero"`
	PollPassS         float64            `json:"poll_pass_s,omitzero"`          // one poll of every token, 8 at a time
	PollCPUS          float64            `json:"poll_cpu_s,omitzero"`           // its tokend CPU
	PollCPUPercent10m float64            `json:"poll_cpu_percent_10m,omitzero"` // that CPU spread over the default 10m
	ScrapeAfterWorkMS float64            `json:"scrape_after_work_ms,omitzero"`

	// restart child
	StartStateMS   float64 `json:"start_state_ms,omitzero"`   // exec to every token scheduled, state in Redis
	LoadAllStateMS float64 `json:"loadall_state_ms,omitzero"` // of which LoadAll
	ConfigMS       float64 `json:"config_ms,omitzero"`        // of which the config: load, validate, resolve
	PerToken       string  `json:"per_token,omitzero"`        // metrics.per_token: auto resolved for N
	// ScrapePerToken* is a second scrape with metrics.per_token: true, when auto turned it off.
	ScrapePerTokenMS       float64 `json:"scrape_per_token_ms,omitzero"`
	ScrapePerTokenSeries   int     `json:"scrape_per_token_series,omitzero"`
	ScrapePerTokenAllocMiB float64 `json:"scrape_per_token_alloc_mib,omitzero"`
	LoadOnlyMS             float64 `json:"load_only_ms,omitzero"` // a second read alone (store.LoadEach: pipelined reads + decrypt)
	// PeakRSSStartMiB is VmHWM just after LoadAll: the start-up peak.
	PeakRSSStartMiB  float64 `json:"peak_rss_start_mib,omitzero"`
	RSSMiB           float64 `json:"rss_mib,omitzero"`      // after start and the idle phase
	PeakRSSMiB       float64 `json:"peak_rss_mib,omitzero"` // VmHWM before the scrape
	HeapMiB          float64 `json:"heap_mib,omitzero"`     // HeapInuse after a GC
	RSSPerTokenKiB   float64 `json:"rss_per_token_kib,omitzero"`
	HeapPerTokenKiB  float64 `json:"heap_per_token_kib,omitzero"`
	IdleSeconds      float64 `json:"idle_seconds,omitzero"`
	IdleCPUPercent   float64 `json:"idle_cpu_percent,omitzero"` // of one core
	IdleWorks        int     `json:"idle_works,omitzero"`
	ScrapeMS         float64 `json:"scrape_ms,omitzero"`
	ScrapeAllocMiB   float64 `json:"scrape_alloc_mib,omitzero"`
	ScrapeBytes      int     `json:"scrape_bytes,omitzero"`
	ScrapeSeries     int     `json:"scrape_series,omitzero"`
	PeakRSSScrapeMiB float64 `json:"peak_rss_after_scrape_mib,omitzero"`
}

// Report is the whole run.
type Report struct {
	Machine    Machine         `json:"machine"`
	Command    string          `json:"command"`
	Results    []Result        `json:"results"`
	RedisBench *RedisBench     `json:"redis_benchmark,omitempty"`
	Ceilings   map[int]Ceiling `json:"ceilings,omitempty"`
}

// Machine describes where the figures come from.
type Machine struct {
	NProc        int    `json:"nproc"`
	CPU          string `json:"cpu"`
	MemTotal     string `json:"mem_total"`
	Go           string `json:"go"`
	RedisVersion string `json:"redis_version"`
}

func parent(o opts, stdout, stderr io.Writer) error {
	var sizes []int
	for _, s := range strings.Split(o.sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return fmt.Errorf("-n: %q is not a positive number", s)
		}
		sizes = append(sizes, n)
	}
	rdb, err := connect(o.redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	nonce := make([]byte, 4)
	_, _ = rand.Read(nonce)
	root := fmt.Sprintf("tokendbench-%d-%s", os.Getpid(), hex.EncodeToString(nonce))
	defer func() { storetest.DeletePrefix(context.Background(), rdb, root) }()

	rep := Report{Machine: machine(ctx, rdb), Command: "go run ./cmd/tokendbench " + strings.Join(os.Args[1:], " ")}
	if !o.noRB {
		rb, err := redisBenchmark(ctx, rdb, o, root+":rb", stderr)
		if err != nil {
			return fmt.Errorf("redis-benchmark: %w", err)
		}
		rep.RedisBench = rb
	}
	for _, n := range sizes {
		prefix := fmt.Sprintf("%s:n%d", root, n)
		fmt.Fprintf(stderr, "== N=%d\n", n)
		// Renewals of the lateness stream start an hour from now: nothing is due before the work child moves
		// its clock, and the restart child (real clock) finds nothing due during its idle phase.
		base := time.Now().Add(time.Hour).UnixMilli()
		var res Result
		// The smoke run sets per_token: false so that CI exercises both scrapes; the full run keeps auto.
		perToken := map[bool]string{true: "false", false: "auto"}[o.smoke]
		cfgPath, err := writeConfig(n, o.providers, perToken)
		if err != nil {
			return err
		}
		defer os.Remove(cfgPath)
		o.configPath = cfgPath
		load0 := loadAvg()
		if err := runChild(ctx, o, "work", n, prefix, base, &res, stderr); err != nil {
			return fmt.Errorf("work child, %d tokens: %w", n, err)
		}
		if err := runChild(ctx, o, "restart", n, prefix, base, &res, stderr); err != nil {
			return fmt.Errorf("restart child, %d tokens: %w", n, err)
		}
		res.N, res.Load = n, load0+" → "+loadAvg()
		rep.Results = append(rep.Results, res)
		storetest.DeletePrefix(ctx, rdb, prefix)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if rep.RedisBench != nil {
		rep.Ceilings = map[int]Ceiling{}
		for _, r := range rep.Results {
			rep.Ceilings[r.N] = rep.RedisBench.ceiling(r)
		}
	}
	printReport(stdout, rep)
	if o.jsonOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(o.jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// runChild runs this binary as a child of the given role and merges the JSON it prints into res.
func runChild(ctx context.Context, o opts, role string, n int, prefix string, base int64, res *Result, stderr io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{
		"-role", role, "-size", strconv.Itoa(n), "-prefix", prefix, "-base", strconv.FormatInt(base, 10),
		"-redis", o.redisURL, "-idle", o.idle.String(), "-lateness", o.lateness.String(),
		"-rate", strconv.Itoa(o.rate), "-workers", strconv.Itoa(o.workers), "-providers", strconv.Itoa(o.providers),
		"-full-max", o.fullMax.String(), "-profile", o.profileDir, "-free-os-memory=" + strconv.FormatBool(o.freeOSMemory),
		"-config", o.configPath,
	}
	var out strings.Builder
	cmd := exec.CommandContext(ctx, self, append(args, "-t0", "0")...)
	cmd.Stdout, cmd.Stderr = &out, stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	// -t0 is the last flag: set it as late as possible, just before the process starts.
	cmd.Args[len(cmd.Args)-1] = strconv.FormatInt(time.Now().UnixNano(), 10)
	if err := cmd.Run(); err != nil {
		return err
	}
	return json.Unmarshal([]byte(out.String()), res)
}

// writeConfig writes the config file of n tokens over providers VCD providers, the shape an operator
// writes (a provider block each, a token with a file sink each), for the children to load as tokend does
// at start: the config's parse, validation and resolution are part of "exec to every token scheduled".
func writeConfig(n, providers int, perToken string) (string, error) {
	f, err := os.CreateTemp("", "tokendbench-*.yaml")
	if err != nil {
		return "", err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "metrics: {per_token: %s}\n", perToken)
	fmt.Fprintf(w, "state_key_file: env:TOKEND_STATE_KEY\ndefaults: {renew_before: %dh, jitter: 0%%}\nproviders:\n", int(renewBefore.Hours()))
	for p := range providers {
		fmt.Fprintf(w, "  - {name: vendor-%02d, type: vcd, url: \"https://vcd%02d.example.com\", username: tokend, password_file: /run/credentials/tokend.service/vcd, org: System}\n", p, p)
	}
	w.WriteString("tokens:\n")
	for i := range n {
		fmt.Fprintf(w, "  - name: %s\n    provider: vendor-%02d\n    kind: access_token\n    deliver:\n      - file: {path: /var/lib/tokend/%s.token}\n",
			tokenName(i), i%providers, tokenName(i))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return "", err
	}
	return f.Name(), f.Close()
}

func connect(url string) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("-redis: %w", err)
	}
	rdb := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redis at %s does not answer: %w", opt.Addr, err)
	}
	return rdb, nil
}

func machine(ctx context.Context, rdb *redis.Client) Machine {
	m := Machine{NProc: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				m.MemTotal = fmt.Sprintf("%.1f GiB", kb/(1<<20))
			}
		}
	}
	if info, err := rdb.Info(ctx, "server").Result(); err == nil {
		m.RedisVersion = infoField(info, "redis_version")
	}
	return m
}

// loadAvg returns the 1-minute load average.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// infoField returns one field of an INFO answer.
func infoField(info, key string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+":"); ok {
			return v
		}
	}
	return ""
}
