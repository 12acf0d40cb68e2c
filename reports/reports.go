package reports

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wgpolicyv1alpha2 "github.com/stsguard/stsguard/apis/wgpolicyk8s/v1alpha2"
	"github.com/stsguard/stsguard/audit"
	"github.com/stsguard/stsguard/engine"
)

// API names the reports API results are written in.
type API string

// The reports APIs.
const (
	// PolicyReport is wgpolicyk8s.io/v1alpha2 PolicyReport.
	PolicyReport API = "wgpolicyk8s.io/v1alpha2"
	// OpenReports is openreports.io/v1alpha1 Report.
	OpenReports API = "openreports.io/v1alpha1"
	// NoReports writes no report (metrics only).
	NoReports API = "none"
)

// APIs are the values a reports API may take, default first.
var APIs = []API{PolicyReport, OpenReports, NoReports}

// Name is the name of the report stsguard keeps in each namespace.
const Name = "stsguard"

// Policy and Source are the policy and source of every result.
const (
	Policy = "stsguard"
	Source = "stsguard"
)

// OmittedAnnotation holds, on a report that lists MaxResults results, how
// many more there are (counted in its summary, not listed).
const OmittedAnnotation = "stsguard.io/results-omitted"

// ManagedByLabel marks the reports stsguard keeps:
// app.kubernetes.io/managed-by=stsguard.
const ManagedByLabel = "app.kubernetes.io/managed-by"

// DefaultMaxResults is the default bound on the results of one report:
// 500 results of up to about 1 KiB each keep a report well under etcd's
// 1.5 MiB object limit.
const DefaultMaxResults = 500

// Subject is one judged object: what its results refer to.
type Subject struct {
	// APIVersion, Kind, Namespace, Name and UID identify the object.
	APIVersion, Kind, Namespace, Name string
	UID                               types.UID
}

// Results renders the findings of one object (audit.Judge's, at phase
// Validating) as report results: policy "stsguard", rule the rule ID,
// result fail for a Deny finding, warn for Warn and Audit (a rule that
// could not judge, a Lookup failure, is a Warn finding that says so);
// severity high, medium and low alike; the message; the object; and
// the properties "field" (the field path) and "action" (Deny, Warn or
// Audit). Mutate findings are not results. since is each result's
// timestamp: when the object got the findings it has.
func Results(s Subject, findings []audit.Finding, since metav1.Time) []openreportsv1alpha1.ReportResult {
	var out []openreportsv1alpha1.ReportResult
	for _, f := range findings {
		var res openreportsv1alpha1.Result
		var sev openreportsv1alpha1.ResultSeverity
		switch f.Action {
		case engine.Deny:
			res, sev = wgpolicyv1alpha2.StatusFail, wgpolicyv1alpha2.SeverityHigh
		case engine.Warn:
			res, sev = wgpolicyv1alpha2.StatusWarn, wgpolicyv1alpha2.SeverityMedium
		case engine.Audit:
			res, sev = wgpolicyv1alpha2.StatusWarn, wgpolicyv1alpha2.SeverityLow
		default:
			continue
		}
		out = append(out, openreportsv1alpha1.ReportResult{
			Source: Source, Policy: Policy, Rule: f.Rule, Result: res, Severity: sev,
			Timestamp:   metav1.Timestamp{Seconds: since.Unix()},
			Subjects:    []corev1.ObjectReference{{APIVersion: s.APIVersion, Kind: s.Kind, Namespace: s.Namespace, Name: s.Name, UID: s.UID}},
			Description: f.Message,
			Properties:  map[string]string{"field": f.Field, "action": string(f.Action)},
		})
	}
	return out
}

// rank orders results: fail, then error, then warn; pass and skip last.
func rank(r openreportsv1alpha1.Result) int {
	switch r {
	case wgpolicyv1alpha2.StatusFail:
		return 0
	case wgpolicyv1alpha2.StatusError:
		return 1
	case wgpolicyv1alpha2.StatusWarn:
		return 2
	}
	return 3
}

// Sort orders results for a report, in place: by result (fail, error,
// warn), then by the object's kind and name, then by rule and field, so
// that a bounded report keeps the failures.
func Sort(results []openreportsv1alpha1.ReportResult) {
	slices.SortFunc(results, func(a, b openreportsv1alpha1.ReportResult) int {
		return cmp.Or(
			cmp.Compare(rank(a.Result), rank(b.Result)),
			cmp.Compare(subject(a).Kind, subject(b).Kind),
			cmp.Compare(subject(a).Name, subject(b).Name),
			cmp.Compare(a.Rule, b.Rule),
			cmp.Compare(a.Properties["field"], b.Properties["field"]),
		)
	})
}

func subject(r openreportsv1alpha1.ReportResult) corev1.ObjectReference {
	if len(r.Subjects) == 0 {
		return corev1.ObjectReference{}
	}
	return r.Subjects[0]
}

// Summarize counts results by result.
func Summarize(results []openreportsv1alpha1.ReportResult) openreportsv1alpha1.ReportSummary {
	var s openreportsv1alpha1.ReportSummary
	for _, r := range results {
		switch r.Result {
		case wgpolicyv1alpha2.StatusPass:
			s.Pass++
		case wgpolicyv1alpha2.StatusFail:
			s.Fail++
		case wgpolicyv1alpha2.StatusWarn:
			s.Warn++
		case wgpolicyv1alpha2.StatusError:
			s.Error++
		case wgpolicyv1alpha2.StatusSkip:
			s.Skip++
		}
	}
	return s
}

// Writer keeps the report of a namespace in the cluster.
type Writer struct {
	// Client writes the reports; it needs get, create, update and delete
	// on the API's reports.
	Client client.Client
	// API is the reports API; NoReports makes Write a no-op.
	API API
	// MaxResults bounds the results listed in one report; zero means
	// DefaultMaxResults.
	MaxResults int
}

// Operations Write reports.
const (
	OpNone   = ""
	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
)

// ErrNotInstalled is returned by Write when the cluster does not serve the
// reports API (its CustomResourceDefinition is not installed).
var ErrNotInstalled = errors.New("the reports API is not installed")

// Write makes the report of namespace say results (sorted with Sort, the
// first MaxResults listed, the summary counting all, the number left out
// in OmittedAnnotation): it creates the report, updates it when its
// content differs, deletes it when results is empty, or leaves it. It
// returns what it did (OpNone for nothing), ErrNotInstalled (wrapped) when
// the API is not served, or the API error (a Conflict when the report
// changed meanwhile: call it again).
func (w *Writer) Write(ctx context.Context, namespace string, results []openreportsv1alpha1.ReportResult) (string, error) {
	if w.API == NoReports {
		return OpNone, nil
	}
	limit := cmp.Or(w.MaxResults, DefaultMaxResults)
	Sort(results)
	summary := Summarize(results)
	omitted := max(len(results)-limit, 0)
	listed := results[:min(len(results), limit)]

	cur, err := w.newObject()
	if err != nil {
		return OpNone, err
	}
	err = w.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: Name}, cur)
	switch {
	case meta.IsNoMatchError(err):
		return OpNone, fmt.Errorf("%w: %w", ErrNotInstalled, err)
	case apierrors.IsNotFound(err):
		if len(results) == 0 {
			return OpNone, nil
		}
		obj, _ := w.newObject()
		obj.SetNamespace(namespace)
		obj.SetName(Name)
		w.fill(obj, listed, summary, omitted)
		if err := w.Client.Create(ctx, obj); err != nil {
			if notServed(err) {
				return OpNone, fmt.Errorf("%w: %w", ErrNotInstalled, err)
			}
			return OpNone, err
		}
		return OpCreate, nil
	case err != nil:
		return OpNone, err
	}
	if len(results) == 0 {
		if err := w.Client.Delete(ctx, cur, client.Preconditions{UID: ptrUID(cur.GetUID()), ResourceVersion: ptrString(cur.GetResourceVersion())}); err != nil && !apierrors.IsNotFound(err) {
			return OpNone, err
		}
		return OpDelete, nil
	}
	next := cur.DeepCopyObject().(client.Object)
	w.fill(next, listed, summary, omitted)
	if equality.Semantic.DeepEqual(cur, next) {
		return OpNone, nil
	}
	if err := w.Client.Update(ctx, next); err != nil {
		return OpNone, err
	}
	return OpUpdate, nil
}

// notServed reports whether err, from a create, says the API is not
// served: no such kind in discovery, or a 404 that is not about the
// namespace (the CRD deleted since discovery was read).
func notServed(err error) bool {
	if meta.IsNoMatchError(err) {
		return true
	}
	var st apierrors.APIStatus
	if !apierrors.IsNotFound(err) || !errors.As(err, &st) {
		return false
	}
	d := st.Status().Details
	return d == nil || d.Kind != "namespaces"
}

// Namespaces returns the namespaces that hold a report stsguard keeps
// (ManagedByLabel), or ErrNotInstalled (wrapped).
func (w *Writer) Namespaces(ctx context.Context) ([]string, error) {
	var list client.ObjectList
	switch w.API {
	case PolicyReport:
		list = &wgpolicyv1alpha2.PolicyReportList{}
	case OpenReports:
		list = &openreportsv1alpha1.ReportList{}
	default:
		return nil, nil
	}
	err := w.Client.List(ctx, list, client.MatchingLabels{ManagedByLabel: Source})
	if meta.IsNoMatchError(err) {
		return nil, fmt.Errorf("%w: %w", ErrNotInstalled, err)
	}
	if err != nil {
		return nil, err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, it := range items {
		if o, ok := it.(client.Object); ok && o.GetName() == Name {
			out = append(out, o.GetNamespace())
		}
	}
	return out, nil
}

// AddToScheme registers the types of both reports APIs.
func AddToScheme(s *runtime.Scheme) error {
	if err := wgpolicyv1alpha2.AddToScheme(s); err != nil {
		return err
	}
	return openreportsv1alpha1.Install(s)
}

func (w *Writer) newObject() (client.Object, error) {
	switch w.API {
	case PolicyReport:
		return &wgpolicyv1alpha2.PolicyReport{}, nil
	case OpenReports:
		return &openreportsv1alpha1.Report{}, nil
	}
	return nil, fmt.Errorf("reports API %q: use one of %v", w.API, APIs)
}

// fill sets the content stsguard owns on obj, leaving the rest (labels
// and annotations others set) as they are.
func (w *Writer) fill(obj client.Object, listed []openreportsv1alpha1.ReportResult, summary openreportsv1alpha1.ReportSummary, omitted int) {
	labels := obj.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[ManagedByLabel] = Source
	obj.SetLabels(labels)
	ann := obj.GetAnnotations()
	if omitted > 0 {
		if ann == nil {
			ann = map[string]string{}
		}
		ann[OmittedAnnotation] = strconv.Itoa(omitted)
	} else {
		delete(ann, OmittedAnnotation)
	}
	obj.SetAnnotations(ann)
	switch r := obj.(type) {
	case *wgpolicyv1alpha2.PolicyReport:
		r.Summary, r.Results = summary, listed
	case *openreportsv1alpha1.Report:
		r.Source, r.Summary, r.Results = Source, summary, listed
		r.Configuration = &openreportsv1alpha1.ReportConfiguration{Limits: openreportsv1alpha1.Limits{MaxResults: cmp.Or(w.MaxResults, DefaultMaxResults)}}
	}
}

func ptrUID(u types.UID) *types.UID { return &u }
func ptrString(s string) *string    { return &s }
