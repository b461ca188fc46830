package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// printReport writes the figures as the Markdown tables of docs/benchmarks.md.
func printReport(w io.Writer, rep Report) {
	m := rep.Machine
	fmt.Fprintf(w, "Command: `%s`\n\n", strings.TrimSpace(rep.Command))
	fmt.Fprintf(w, "Machine: %d CPUs (nproc), %s, %s memory, %s, Redis %s on 127.0.0.1\n\n", m.NProc, m.CPU, m.MemTotal, m.Go, m.RedisVersion)
	head := "| figure | DESIGN §9 target |"
	sep := "|---|---|"
	for _, r := range rep.Results {
		head += fmt.Sprintf(" N = %s |", human(r.N))
		sep += "---:|"
	}
	fmt.Fprintln(w, head)
	fmt.Fprintln(w, sep)
	row := func(name, target string, f func(r Result) string) {
		line := "| " + name + " | " + target + " |"
		for _, r := range rep.Results {
			line += " " + f(r) + " |"
		}
		fmt.Fprintln(w, line)
	}
	row("1-min load average before → after (2 cores)", "", func(r Result) string { return r.Load })
	row("RSS after start and idle phase (MiB)", "≤ 256 at 100k", func(r Result) string { return f1(r.RSSMiB) })
	row("RSS per token (KiB)", "", func(r Result) string { return f2(r.RSSPerTokenKiB) })
	row("peak RSS at start, just after LoadAll (MiB)", "", func(r Result) string { return f1(r.PeakRSSStartMiB) })
	row("peak RSS before any scrape (MiB)", "", func(r Result) string { return f1(r.PeakRSSMiB) })
	row("Go heap in use after GC (MiB)", "", func(r Result) string { return f1(r.HeapMiB) })
	row("Go heap per token (KiB)", "", func(r Result) string { return f2(r.HeapPerTokenKiB) })
	row("exec → every token scheduled, state in Redis (ms)", "≤ 3000 at 100k", func(r Result) string { return f0(r.StartStateMS) })
	row("  of which the config: load, validate, resolve (ms)", "", func(r Result) string { return f0(r.ConfigMS) })
	row("  of which engine.LoadAll (ms)", "", func(r Result) string { return f0(r.LoadAllStateMS) })
	row("  store.LoadEach alone, pipelined read + decrypt (ms)", "", func(r Result) string { return f0(r.LoadOnlyMS) })
	row("exec → every token scheduled, empty state (ms)", "", func(r Result) string { return f0(r.StartEmptyMS) })
	row("idle CPU, % of one core", "≤ 1%", func(r Result) string {
		return fmt.Sprintf("%.3f%% (%.0f s)", r.IdleCPUPercent, r.IdleSeconds)
	})
	row("scheduler lateness p50 / p99 / max (ms)", "p99 ≤ 100", func(r Result) string {
		return fmt.Sprintf("%.1f / %.1f / %.1f", r.LatenessP50MS, r.LatenessP99MS, r.LatenessMaxMS)
	})
	row("  tokens due (1,000/s), rotation done p50 / p99 (ms)", "", func(r Result) string {
		return fmt.Sprintf("%d, %.1f / %.1f", r.LatenessSamples, r.DoneP50MS, r.DoneP99MS)
	})
	row("rotations per second, full speed", "", func(r Result) string { return f0(r.FullPerSec) })
	row("  renewals measured (scheduler.Loop + Engine.Work, 16 workers)", "", func(r Result) string { return fmt.Sprint(r.FullRotations) })
	row("rotations per second, 16 goroutines calling Engine.Work (no loop)", "", func(r Result) string {
		return fmt.Sprintf("%.0f (%d renewals)", r.DirectPerSec, r.DirectRotations)
	})
	row("Redis round trips per rotation (go-redis hook)", "≤ 6", func(r Result) string {
		return fmt.Sprintf("%.2f (loop %.3f)", r.RTTPerRotation, r.LoopRTTPerRot)
	})
	row("Redis commands per rotation", "", func(r Result) string { return f2(r.CmdsPerRotation) })
	if rep.Ceilings != nil {
		row("Redis ceiling for those round trips (rotations/s)", "", func(r Result) string { return f0(rep.Ceilings[r.N].RotationsPerSec) })
		row("rotation rate as a share of the Redis ceiling: loop / direct", "≥ 50%", func(r Result) string {
			c := rep.Ceilings[r.N]
			return fmt.Sprintf("%.0f%% / %.0f%%", 100*c.Share, 100*r.DirectPerSec/max(c.RotationsPerSec, 1))
		})
	}
	row("CPU per rotation: tokend / redis-server (µs), loop phase", "", func(r Result) string {
		return fmt.Sprintf("%.0f / %.0f", r.CPUPerRotationUS, r.RedisCPUPerRotUS)
	})
	row("tokend CPU per rotation without the loop (µs)", "", func(r Result) string { return f0(r.DirectCPUPerRotUS) })
	row("one poll pass over every token: wall s / CPU s", "", func(r Result) string {
		return fmt.Sprintf("%.1f / %.1f", r.PollPassS, r.PollCPUS)
	})
	row("  its CPU spread over the default poll (@every 10m), % of a core", "", func(r Result) string {
		return fmt.Sprintf("%.2f%%", r.PollCPUPercent10m)
	})
	row("first creates per second (one worker per vendor)", "", func(r Result) string { return f0(r.PopulatePerSec) })
	row("/metrics scrape after restart, metrics.per_token: auto (ms)", "≤ 1000 (issue 9)", func(r Result) string { return f0(r.ScrapeMS) })
	row("  per-token series (auto: on up to 10,000 tokens)", "", func(r Result) string { return r.PerToken })
	row("  series / body MiB / allocated MiB", "", func(r Result) string {
		return fmt.Sprintf("%d / %.1f / %.0f", r.ScrapeSeries, float64(r.ScrapeBytes)/(1<<20), r.ScrapeAllocMiB)
	})
	row("  peak RSS after the scrape (MiB)", "", func(r Result) string { return f1(r.PeakRSSScrapeMiB) })
	row("/metrics scrape after rotations (ms)", "", func(r Result) string { return f0(r.ScrapeAfterWorkMS) })
	row("/metrics scrape with metrics.per_token: true (ms)", "", func(r Result) string {
		if r.ScrapePerTokenMS == 0 {
			return "(as above)"
		}
		return f0(r.ScrapePerTokenMS)
	})
	row("  series / allocated MiB", "", func(r Result) string {
		if r.ScrapePerTokenMS == 0 {
			return ""
		}
		return fmt.Sprintf("%d / %.0f", r.ScrapePerTokenSeries, r.ScrapePerTokenAllocMiB)
	})

	if len(rep.Results) > 0 {
		last := rep.Results[len(rep.Results)-1]
		fmt.Fprintf(w, "\nRound trips per rotation by kind at N = %s (go-redis hook): ", human(last.N))
		fmt.Fprintln(w, perKind(last.RTTByKind))
		fmt.Fprintf(w, "\nINFO commandstats calls per rotation at N = %s: %s\n", human(last.N), perKind(last.CommandStats))
	}
	if rb := rep.RedisBench; rb != nil {
		fmt.Fprintf(w, "\nredis-benchmark, same run, %d clients, %d requests per test:\n\n", rb.Clients, rb.Requests)
		fmt.Fprintln(w, "| test | requests/s (pipelines/s for the pipeline) | command |")
		fmt.Fprintln(w, "|---|---:|---|")
		for _, k := range slices.Sorted(maps.Keys(rb.RPS)) {
			fmt.Fprintf(w, "| %s | %.0f | `%s` |\n", k, rb.RPS[k], rb.Commands[k])
		}
	}
}

func perKind(m map[string]float64) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		if m[k] >= 0.005 {
			parts = append(parts, fmt.Sprintf("%s %.2f", k, m[k]))
		}
	}
	return strings.Join(parts, ", ")
}

func human(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

func f0(v float64) string { return fmt.Sprintf("%.0f", v) }
func f1(v float64) string { return fmt.Sprintf("%.1f", v) }
func f2(v float64) string { return fmt.Sprintf("%.2f", v) }
