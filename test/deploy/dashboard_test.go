package deploy

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/sets"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/stsguard/stsguard/test/harness"
)

// dashboard is the part of a Grafana dashboard (the classic JSON model)
// the test reads. The keys it does not look into are listed as raw JSON,
// so that decoding can be strict: a misspelt or miscased key, which
// Grafana would silently ignore, fails the test.
type dashboard struct {
	Annotations struct {
		List []annotation `json:"list"`
	} `json:"annotations"`
	Description          string            `json:"description"`
	Editable             bool              `json:"editable"`
	FiscalYearStartMonth int               `json:"fiscalYearStartMonth"`
	GraphTooltip         int               `json:"graphTooltip"`
	ID                   *int              `json:"id"`
	Links                []json.RawMessage `json:"links"`
	Panels               []panel           `json:"panels"`
	Refresh              string            `json:"refresh"`
	SchemaVersion        int               `json:"schemaVersion"`
	Tags                 []string          `json:"tags"`
	Templating           struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Time struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"time"`
	Timepicker json.RawMessage `json:"timepicker"`
	Timezone   string          `json:"timezone"`
	Title      string          `json:"title"`
	UID        string          `json:"uid"`
	Version    int             `json:"version"`
	WeekStart  string          `json:"weekStart"`
}

// panel is a panel or a row; a collapsed row holds its panels.
type panel struct {
	Collapsed   bool            `json:"collapsed"`
	Datasource  *datasourceRef  `json:"datasource"`
	Description string          `json:"description"`
	FieldConfig json.RawMessage `json:"fieldConfig"`
	GridPos     struct {
		H int `json:"h"`
		W int `json:"w"`
		X int `json:"x"`
		Y int `json:"y"`
	} `json:"gridPos"`
	ID      int             `json:"id"`
	Options json.RawMessage `json:"options"`
	Panels  []panel         `json:"panels"`
	Targets []target        `json:"targets"`
	Title   string          `json:"title"`
	Type    string          `json:"type"`
}

type target struct {
	Datasource   *datasourceRef `json:"datasource"`
	Expr         string         `json:"expr"`
	Instant      bool           `json:"instant"`
	LegendFormat string         `json:"legendFormat"`
	Range        *bool          `json:"range"`
	RefID        string         `json:"refId"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type variable struct {
	Current     json.RawMessage   `json:"current"`
	Datasource  *datasourceRef    `json:"datasource"`
	Definition  string            `json:"definition"`
	Hide        int               `json:"hide"`
	IncludeAll  bool              `json:"includeAll"`
	Label       string            `json:"label"`
	Multi       bool              `json:"multi"`
	Name        string            `json:"name"`
	Options     []json.RawMessage `json:"options"`
	Query       json.RawMessage   `json:"query"` // a string, or an object for a Prometheus query variable
	Refresh     int               `json:"refresh"`
	Regex       string            `json:"regex"`
	SkipURLSync bool              `json:"skipUrlSync"`
	Sort        int               `json:"sort"`
	Type        string            `json:"type"`
}

// prometheusVariableQuery is the query of a Prometheus query variable as
// Grafana 10 and 11 store it.
type prometheusVariableQuery struct {
	QryType int    `json:"qryType"`
	Query   string `json:"query"`
	RefID   string `json:"refId"`
}

type annotation struct {
	BuiltIn     int           `json:"builtIn"`
	Datasource  datasourceRef `json:"datasource"`
	Enable      bool          `json:"enable"`
	Expr        string        `json:"expr"`
	Hide        bool          `json:"hide"`
	IconColor   string        `json:"iconColor"`
	Name        string        `json:"name"`
	Step        string        `json:"step"`
	TitleFormat string        `json:"titleFormat"`
	Type        string        `json:"type"`
}

// The dashboard's data source: the variable, so that it works imported
// through the UI and provisioned by the dashboard sidecar alike.
var dashboardDatasource = datasourceRef{Type: "prometheus", UID: "${datasource}"}

// grafanaPanelTypes are the core panel types the dashboard may use.
var grafanaPanelTypes = []string{"row", "stat", "timeseries", "bargauge", "gauge", "table", "text", "barchart", "heatmap", "state-timeline"}

// grafanaVar matches $name, ${name} and ${name:format}.
var grafanaVar = regexp.MustCompile(`\$(?:\{(\w+)(?::\w+)?\}|(\w+))`)

// grafanaBuiltins are Grafana's variables the dashboard may use in PromQL,
// replaced by a value of their kind before parsing.
var grafanaBuiltins = map[string]string{"__rate_interval": "5m", "__interval": "1m", "__range": "6h"}

// substitute replaces the Grafana variables of expr by valid PromQL: the
// built-in ones by a duration, the dashboard's (defined) by var_<name>.
func substitute(t *testing.T, where, expr string, defined []string) string {
	t.Helper()
	assert.NotContains(t, expr, "[[", "%s: the deprecated [[variable]] syntax", where)
	return grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
		sub := grafanaVar.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		if v, ok := grafanaBuiltins[name]; ok {
			return v
		}
		assert.Contains(t, defined, name, "%s: undefined variable $%s", where, name)
		return "var_" + name
	})
}

// stsguardWebhookNames are the webhook names of the configurations in
// deploy/ (whichever file holds them), which the apiserver labels its
// metrics with.
func stsguardWebhookNames(t *testing.T) []string {
	t.Helper()
	names := sets.New[string]()
	err := filepath.WalkDir(filepath.Join(harness.Root(), "deploy"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		docs := utilyaml.NewYAMLReader(bufio.NewReader(f))
		for {
			doc, err := docs.Read()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			var obj struct {
				Kind     string `json:"kind"`
				Webhooks []struct {
					Name string `json:"name"`
				} `json:"webhooks"`
			}
			if yaml.Unmarshal(doc, &obj) != nil { // not an object: a JSON patch, ...
				continue
			}
			if obj.Kind != "MutatingWebhookConfiguration" && obj.Kind != "ValidatingWebhookConfiguration" {
				continue
			}
			for _, w := range obj.Webhooks {
				names.Insert(w.Name)
			}
		}
	})
	require.NoError(t, err)
	require.NotEmpty(t, names, "webhook configurations in deploy/")
	return sets.List(names)
}

// checkDashboardExpr checks one PromQL expression of the dashboard (after
// substitute): the metrics (checkPromQL), and that each selects the right
// series: stsguard's pods of the chosen namespace and job, or the
// apiserver's calls of stsguard's webhooks. It returns the metrics used.
func checkDashboardExpr(t *testing.T, where, expr string, known map[string]metricInfo, webhooks []string) []string {
	t.Helper()
	var used []string
	for _, u := range checkPromQL(t, where, expr, known) {
		used = append(used, u.metric)
		matcher := map[string]*labels.Matcher{}
		for _, m := range u.vs.LabelMatchers {
			matcher[m.Name] = m
		}
		if u.info.servedByStsguardPods() {
			for _, l := range []string{"namespace", "job"} {
				m := matcher[l]
				assert.True(t, m != nil && m.Type == labels.MatchEqual && m.Value == "var_"+l,
					"%s: %s must select %s=\"$%s\" (stsguard's pods of the chosen installation)", where, u.vs.Name, l, l)
			}
			continue
		}
		// The apiserver's metrics are scraped from the apiserver, in its
		// own namespace and job: only the webhook name tells stsguard's.
		for _, l := range []string{"namespace", "job"} {
			assert.Nil(t, matcher[l], "%s: %s is the apiserver's; a %s matcher selects nothing", where, u.vs.Name, l)
		}
		name := matcher["name"]
		if !assert.NotNil(t, name, "%s: %s must select stsguard's webhooks by name", where, u.vs.Name) {
			continue
		}
		for _, w := range webhooks {
			assert.True(t, name.Matches(w), "%s: %s does not select webhook %s", where, u.vs.Name, w)
		}
		assert.False(t, name.Matches("statefulsets.validate.example.com"), "%s: %s selects other webhooks", where, u.vs.Name)
	}
	return used
}

// question is a description that starts with the question the panel
// answers.
var question = regexp.MustCompile(`^[A-Z][^?]{10,}\?`)

// labelValues is the query of a Prometheus query variable.
var labelValues = regexp.MustCompile(`^label_values\((.+), *(\w+)\)$`)

// deploy/grafana/stsguard.json is a Grafana dashboard whose every query is
// valid PromQL on metrics that exist, scoped to one stsguard installation,
// and whose every panel says which question it answers.
func TestDashboard(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(harness.Root(), "deploy", "grafana", "stsguard.json"))
	require.NoError(t, err)
	var d dashboard
	strict, err := kjson.UnmarshalStrict(raw, &d, kjson.DisallowUnknownFields, kjson.DisallowDuplicateFields)
	require.NoError(t, err)
	require.Empty(t, strict, "keys the test does not know (misspelt, miscased or new: add them to the struct)")

	assert.Regexp(t, `^[A-Za-z0-9_-]{1,40}$`, d.UID, "uid: Grafana's limit; links and the sidecar rely on it")
	assert.NotEmpty(t, d.Title)
	assert.NotEmpty(t, d.Description)
	assert.Nil(t, d.ID, "id must be null: an import creates the dashboard rather than overwriting another")
	// The schema Grafana 10.4 and 11.0 to 11.2 write; later versions
	// migrate it when they load it.
	assert.Equal(t, 39, d.SchemaVersion)
	assert.Contains(t, d.Tags, "stsguard")

	known := knownMetrics(t)
	webhooks := stsguardWebhookNames(t)

	// Variables: the data source first, then the ones that select one
	// installation, each using only the ones before it.
	var defined []string
	for i, v := range d.Templating.List {
		where := "variable " + v.Name
		assert.NotContains(t, defined, v.Name, "%s: defined twice", where)
		if i == 0 {
			assert.Equal(t, "datasource", v.Name)
			assert.Equal(t, "datasource", v.Type)
			assert.JSONEq(t, `"prometheus"`, string(v.Query), where)
			defined = append(defined, v.Name)
			continue
		}
		assert.Equal(t, "query", v.Type, where)
		assert.Equal(t, &dashboardDatasource, v.Datasource, where)
		var q prometheusVariableQuery
		_, err := kjson.UnmarshalStrict(v.Query, &q, kjson.DisallowUnknownFields)
		require.NoError(t, err, where)
		assert.Equal(t, q.Query, v.Definition, where)
		m := labelValues.FindStringSubmatch(q.Query)
		if assert.NotNil(t, m, "%s: label_values(selector, label) expected: %s", where, q.Query) {
			// The label must be one the selected metric has.
			checkPromQL(t, where, fmt.Sprintf("count by (%s) (%s)", m[2], substitute(t, where, m[1], defined)), known)
		}
		defined = append(defined, v.Name)
	}
	for _, want := range []string{"datasource", "namespace", "job"} {
		assert.Contains(t, defined, want, "variable")
	}

	for _, a := range d.Annotations.List {
		if a.BuiltIn == 1 {
			continue
		}
		where := "annotation " + a.Name
		assert.Equal(t, dashboardDatasource, a.Datasource, where)
		checkDashboardExpr(t, where, substitute(t, where, a.Expr, defined), known, webhooks)
	}

	// Panels, with those of collapsed rows.
	var all []panel
	for _, p := range d.Panels {
		all = append(all, p)
		if p.Type != "row" {
			assert.Empty(t, p.Panels, "%s: only a row holds panels", p.Title)
			continue
		}
		if !p.Collapsed {
			assert.Empty(t, p.Panels, "%s: an expanded row's panels follow it at the top level", p.Title)
		}
		for _, c := range p.Panels {
			assert.NotEqual(t, "row", c.Type, "%s: a row in row %s", c.Title, p.Title)
			all = append(all, c)
		}
	}
	ids, titles := map[int]bool{}, map[string]bool{}
	used := map[string]bool{}
	rows, questions := 0, 0
	for _, p := range all {
		where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		assert.Positive(t, p.ID, where)
		assert.False(t, ids[p.ID], "%s: id used twice", where)
		ids[p.ID] = true
		assert.NotEmpty(t, p.Title, where)
		assert.False(t, titles[p.Title], "%s: title used twice", where)
		titles[p.Title] = true
		assert.Contains(t, grafanaPanelTypes, p.Type, where)
		g := p.GridPos
		assert.True(t, g.W >= 1 && g.H >= 1 && g.X >= 0 && g.Y >= 0 && g.X+g.W <= 24, "%s: gridPos %+v outside the 24 columns", where, g)
		if p.Type == "row" {
			rows++
			assert.Empty(t, p.Targets, where)
			continue
		}
		if assert.Regexp(t, question, p.Description, "%s: the description starts with the question the panel answers", where) {
			questions++
		}
		assert.Equal(t, &dashboardDatasource, p.Datasource, where)
		assert.NotEmpty(t, p.Targets, "%s: no query", where)
		refIDs := map[string]bool{}
		for _, tg := range p.Targets {
			where := where + " query " + tg.RefID
			assert.NotEmpty(t, tg.RefID, where)
			assert.False(t, refIDs[tg.RefID], "%s: refId used twice", where)
			refIDs[tg.RefID] = true
			assert.Equal(t, &dashboardDatasource, tg.Datasource, where)
			for _, m := range checkDashboardExpr(t, where, substitute(t, where, tg.Expr, defined), known, webhooks) {
				used[m] = true
			}
		}
	}
	assert.GreaterOrEqual(t, rows, 4)
	assert.GreaterOrEqual(t, questions, 20)

	// Every metric stsguard serves has a panel, and so do the apiserver's
	// view and controller-runtime's request count.
	var want []string
	for name, m := range known {
		if m.source == fromStsguard {
			want = append(want, name)
		}
	}
	want = append(want, "up", "controller_runtime_webhook_requests_total",
		"apiserver_admission_webhook_admission_duration_seconds",
		"apiserver_admission_webhook_fail_open_count",
		"apiserver_admission_webhook_rejection_count")
	slices.Sort(want)
	for _, name := range want {
		assert.True(t, used[name], "no panel shows %s", name)
	}
	t.Logf("%d panels in %d rows, %d metrics", len(all)-rows, rows, len(used))
}
