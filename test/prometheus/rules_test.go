package prometheus

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Paths from this package's directory.
var (
	alertsPath     = filepath.Join("..", "..", "configs", "prometheus", "alerts.yaml")
	alertTestsPath = filepath.Join("..", "..", "configs", "prometheus", "alerts_test.yaml")
	dashboardPath  = filepath.Join("..", "..", "configs", "grafana", "tokend.json")
	runbookPath    = filepath.Join("..", "..", "docs", "runbook.md")
)

const runbookBase = "https://github.com/tokend/tokend/blob/main/docs/runbook.md#"

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

func loadRules(t *testing.T) []rule {
	t.Helper()
	b, err := os.ReadFile(alertsPath)
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", alertsPath, err)
	}
	var rules []rule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatalf("%s has no rules", alertsPath)
	}
	return rules
}

// The alerts DESIGN.md section 7 asks for, by the name they have in alerts.yaml.
var wantAlerts = []string{
	"TokendTokenExpiringSoon",   // expiring soon
	"TokendTokenExpired",        // expired
	"TokendRotationOverdue",     // rotation overdue relative to the token's own schedule
	"TokendRotationFailing",     // rotation failing
	"TokendTokenFailed",         // (a failed token needs a person)
	"TokendRenewableUntilNear",  // renewable-until near
	"TokendRevokeFailing",       // revoke failing
	"TokendDeliveryFailing",     // delivery failing
	"TokendProviderErrors",      // provider errors
	"TokendProviderRateLimited", // and rate limiting
	"TokendPollStale",           // poll stale
	"TokendRedisDown",           // Redis down
	"TokendReloadFailed",        // reload failed
	"TokendDown",                // tokend down
	"TokendProviderClockSkew",   // a vendor's clock off ours (issue 8)
}

// TestAlertRules checks that every alert has a severity, a summary, a description and a runbook_url whose
// anchor is a heading of docs/runbook.md, and that the runbook covers nothing but these alerts.
func TestAlertRules(t *testing.T) {
	rules := loadRules(t)
	runbook, err := os.ReadFile(runbookPath)
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^## (Tokend\w+)\s*$`).FindAllStringSubmatch(string(runbook), -1) {
		anchors[strings.ToLower(m[1])] = true
	}

	var alerts []string
	for _, r := range rules {
		if r.Alert == "" {
			continue
		}
		alerts = append(alerts, r.Alert)
		if s := r.Labels["severity"]; s != "critical" && s != "warning" {
			t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("%s: no %s annotation", r.Alert, a)
			}
		}
		url := r.Annotations["runbook_url"]
		anchor, ok := strings.CutPrefix(url, runbookBase)
		if !ok {
			t.Errorf("%s: runbook_url %q does not start with %s", r.Alert, url, runbookBase)
		}
		if anchor != strings.ToLower(r.Alert) {
			t.Errorf("%s: runbook_url anchor %q, want %q", r.Alert, anchor, strings.ToLower(r.Alert))
		}
		if !anchors[anchor] {
			t.Errorf("%s: docs/runbook.md has no heading \"## %s\"", r.Alert, r.Alert)
		}
		delete(anchors, anchor)
	}
	for a := range anchors {
		t.Errorf("docs/runbook.md has a section for %q, which is not an alert", a)
	}
	for _, a := range wantAlerts {
		if !slices.Contains(alerts, a) {
			t.Errorf("alerts.yaml has no alert %s", a)
		}
	}
	for _, a := range alerts {
		if !slices.Contains(wantAlerts, a) {
			t.Errorf("alert %s is not in wantAlerts: add it there (and to the runbook and tests)", a)
		}
	}
}

// TestEveryAlertTestedBothWays checks that alerts_test.yaml shows every alert firing and not firing.
func TestEveryAlertTestedBothWays(t *testing.T) {
	b, err := os.ReadFile(alertTestsPath)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", alertTestsPath, err)
	}
	if !slices.Equal(f.RuleFiles, []string{"alerts.yaml"}) {
		t.Errorf("rule_files = %v, want [alerts.yaml]", f.RuleFiles)
	}
	firing, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range f.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				firing[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	for _, r := range loadRules(t) {
		if r.Alert == "" {
			continue
		}
		if !firing[r.Alert] {
			t.Errorf("alerts_test.yaml never shows %s firing", r.Alert)
		}
		if !quiet[r.Alert] {
			t.Errorf("alerts_test.yaml never shows %s not firing", r.Alert)
		}
	}
}

type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []target `json:"targets"`
	Panels  []panel  `json:"panels"` // a collapsed row's panels
}

type target struct {
	RefID   string `json:"refId"`
	Expr    string `json:"expr"`
	Instant bool   `json:"instant"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	return d
}

// queryPanels returns every panel with queries, rows' nested panels included.
func queryPanels(d dashboard) []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			out = append(out, p)
		}
	}
	walk(d.Panels)
	return out
}

// The panels issue 5 asks for, by title.
var wantPanels = []string{
	"Tokens by state", "Soonest expiry", "Tokens", // the per-token table
	"Rotations", "Failures by token",
	"Provider request rate", "Provider errors", "Provider 429s", "Provider latency",
	"Scheduler lag", "Redis status", "Reloads",
}

// TestDashboard checks the dashboard's shape: the panels on-call needs, each with queries on the datasource
// variable, unique ids, and the per-token table's columns.
func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard uid %q, title %q: want both", d.UID, d.Title)
	}
	ps := queryPanels(d)
	ids := map[int]bool{}
	titles := map[string]panel{}
	for _, p := range ps {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		titles[p.Title] = p
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource is not the ${datasource} variable", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q: target %s has no expr", p.Title, tg.RefID)
			}
			if refs[tg.RefID] {
				t.Errorf("panel %q: refId %s used twice", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
		}
	}
	for _, w := range wantPanels {
		if _, ok := titles[w]; !ok {
			t.Errorf("dashboard has no panel %q", w)
		}
	}
	// The per-token table: expires in, renewable until, next action, failures, last success.
	var table strings.Builder
	for _, tg := range titles["Tokens"].Targets {
		table.WriteString(tg.Expr + "\n")
	}
	for _, m := range []string{
		"tokend_token_expiry_timestamp_seconds", "tokend_token_renewable_until_timestamp_seconds",
		"tokend_token_next_action_timestamp_seconds", "tokend_token_consecutive_failures",
		"tokend_token_last_success_timestamp_seconds", "tokend_token_state",
	} {
		if !strings.Contains(table.String(), m) {
			t.Errorf("the Tokens table does not show %s", m)
		}
	}
}
