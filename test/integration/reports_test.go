package integration

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	wgpolicyv1alpha2 "github.com/stsguard/stsguard/apis/wgpolicyk8s/v1alpha2"
	"github.com/stsguard/stsguard/reports"
	"github.com/stsguard/stsguard/test/harness"
)

// A namespace's report, in each reports API, as the apiserver stores it:
// bounded (failures kept, the rest counted), written only when it changes,
// deleted once empty; a cluster without the API's CRD says so.
func TestReportWriter(t *testing.T) {
	scheme := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(scheme))
	require.NoError(t, reports.AddToScheme(scheme))
	require.NoError(t, apiextensionsv1.AddToScheme(scheme))
	crds := map[reports.API]string{
		reports.PolicyReport: "wgpolicyk8s.io_policyreports.yaml",
		reports.OpenReports:  "openreports.io_reports.yaml",
	}
	result := func(name string, res openreportsv1alpha1.Result) openreportsv1alpha1.ReportResult {
		return openreportsv1alpha1.ReportResult{Source: "stsguard", Policy: "stsguard", Rule: "r", Result: res, Severity: "high",
			Subjects: []corev1.ObjectReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: name}}, Description: "m",
			Properties: map[string]string{"field": "spec", "action": "Deny"}}
	}
	for name, api := range map[string]reports.API{"PolicyReport": reports.PolicyReport, "Report": reports.OpenReports} {
		t.Run(name, func(t *testing.T) {
			// A client of its own: its REST mapper has not seen the API yet.
			c, err := client.New(cp.Config, client.Options{Scheme: scheme})
			require.NoError(t, err)
			adm, _ := newClient(t)
			ns := harness.Namespace(t, adm)
			w := &reports.Writer{Client: c, API: api, MaxResults: 2}
			ctx := context.Background()
			// Without the CRD (another test may have installed it).
			opts := envtest.CRDInstallOptions{Paths: []string{crdPath(crds[api])}}
			require.NoError(t, envtest.UninstallCRDs(cp.Config, opts))
			crdNames := map[reports.API]string{reports.PolicyReport: "policyreports.wgpolicyk8s.io", reports.OpenReports: "reports.openreports.io"}
			harness.Eventually(t, "the CRD gone", func() bool {
				return apierrors.IsNotFound(c.Get(ctx, client.ObjectKey{Name: crdNames[api]}, &apiextensionsv1.CustomResourceDefinition{}))
			}, time.Minute)
			_, err = w.Write(ctx, ns, []openreportsv1alpha1.ReportResult{result("a", "fail")})
			require.ErrorIs(t, err, reports.ErrNotInstalled, "before its CRD is installed")
			_, err = envtest.InstallCRDs(cp.Config, opts)
			require.NoError(t, err)

			get := func() (client.Object, []openreportsv1alpha1.ReportResult, openreportsv1alpha1.ReportSummary) {
				var obj client.Object = &wgpolicyv1alpha2.PolicyReport{}
				if api == reports.OpenReports {
					obj = &openreportsv1alpha1.Report{}
				}
				err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: reports.Name}, obj)
				if apierrors.IsNotFound(err) {
					return nil, nil, openreportsv1alpha1.ReportSummary{}
				}
				require.NoError(t, err)
				switch r := obj.(type) {
				case *wgpolicyv1alpha2.PolicyReport:
					return r, r.Results, r.Summary
				case *openreportsv1alpha1.Report:
					return r, r.Results, r.Summary
				}
				return nil, nil, openreportsv1alpha1.ReportSummary{}
			}
			steps := []struct {
				name    string
				results []openreportsv1alpha1.ReportResult
				op      string
				listed  []string // subjects' names
				summary openreportsv1alpha1.ReportSummary
				omitted string
			}{
				{"three results, two listed", []openreportsv1alpha1.ReportResult{result("c", "warn"), result("b", "warn"), result("a", "fail")},
					reports.OpCreate, []string{"a", "b"}, openreportsv1alpha1.ReportSummary{Fail: 1, Warn: 2}, "1"},
				{"the same again", []openreportsv1alpha1.ReportResult{result("a", "fail"), result("b", "warn"), result("c", "warn")},
					reports.OpNone, []string{"a", "b"}, openreportsv1alpha1.ReportSummary{Fail: 1, Warn: 2}, "1"},
				{"one fixed", []openreportsv1alpha1.ReportResult{result("b", "warn"), result("c", "warn")},
					reports.OpUpdate, []string{"b", "c"}, openreportsv1alpha1.ReportSummary{Warn: 2}, ""},
				{"all fixed", nil, reports.OpDelete, nil, openreportsv1alpha1.ReportSummary{}, ""},
				{"still none", nil, reports.OpNone, nil, openreportsv1alpha1.ReportSummary{}, ""},
			}
			for _, st := range steps {
				op, err := w.Write(ctx, ns, st.results)
				require.NoError(t, err, st.name)
				assert.Equal(t, st.op, op, st.name)
				obj, listed, summary := get()
				var names []string
				for _, r := range listed {
					names = append(names, r.Subjects[0].Name)
				}
				assert.Equal(t, st.listed, names, st.name)
				assert.Equal(t, st.summary, summary, st.name)
				if obj != nil {
					assert.Equal(t, st.omitted, obj.GetAnnotations()[reports.OmittedAnnotation], st.name)
					assert.Equal(t, "stsguard", obj.GetLabels()[reports.ManagedByLabel], st.name)
				}
			}
			nss, err := w.Namespaces(ctx)
			require.NoError(t, err)
			assert.NotContains(t, nss, ns)
		})
	}
}

func crdPath(file string) string {
	return filepath.Join(harness.Root(), "charts", "stsguard", "files", "crds", file)
}
