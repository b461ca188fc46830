// Package prometheus holds the tests of tokend's monitoring files: the alert rules
// (configs/prometheus/alerts.yaml), the Grafana dashboard (configs/grafana/tokend.json) and the runbook the
// alerts link to (docs/runbook.md). rules_test.go checks their structure without any tool; e2e_test.go runs
// the real binary against fake vendors and real Redis, scraped by a real Prometheus that loads the rules, and
// evaluates every dashboard and rule expression there. The package has no code of its own.
package prometheus
