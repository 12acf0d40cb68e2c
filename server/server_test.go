package server

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"

	"github.com/stsguard/stsguard/certs"
	"github.com/stsguard/stsguard/engine"
)

// Every field of Options documents its default; setDefaults applies them
// to the zero value and keeps what is set.
func TestOptionsDefaults(t *testing.T) {
	policyCfg := engine.DefaultConfig()
	policyCfg.Actions = map[string]engine.Action{"readiness-probe-missing": engine.Deny}
	defaults := func(o *Options) {
		o.Port = 9443
		o.CertDir = DefaultCertDir
		o.DNSNames = []string{"stsguard.stsguard-system.svc", "stsguard.stsguard-system.svc.cluster.local"}
		o.CertSecret = "stsguard-serving-cert"
		o.CertNamespace = "stsguard-system"
		o.WebhookConfigurationName = "stsguard"
		o.MetricsBindAddress = ":8080"
		o.HealthProbeBindAddress = ":8081"
		o.ShutdownDelay = ptr.To(5 * time.Second)
	}
	cases := []struct {
		name         string
		podNamespace string // $POD_NAMESPACE
		in           Options
		want         func(*Options)
	}{
		{"zero value", "", Options{}, defaults},
		{"POD_NAMESPACE names the certificate's namespace", "db-guard", Options{}, func(o *Options) {
			defaults(o)
			o.CertNamespace = "db-guard"
		}},
		{"values set are kept", "db-guard", Options{
			Port: 10250, Host: "127.0.0.1", CertDir: "/certs", DNSNames: []string{"guard.example"},
			CertSecret: "guard-cert", CertNamespace: "guard", WebhookConfigurationName: "guard",
			MetricsBindAddress: "0", HealthProbeBindAddress: ":9000", PprofBindAddress: "127.0.0.1:6060",
			Rules: &policyCfg, ShutdownDelay: ptr.To(20 * time.Second),
		}, func(o *Options) {
			*o = Options{
				Port: 10250, Host: "127.0.0.1", CertDir: "/certs", DNSNames: []string{"guard.example"},
				CertSecret: "guard-cert", CertNamespace: "guard", WebhookConfigurationName: "guard",
				MetricsBindAddress: "0", HealthProbeBindAddress: ":9000", PprofBindAddress: "127.0.0.1:6060",
				Rules: &policyCfg, ShutdownDelay: ptr.To(20 * time.Second),
			}
		}},
		{"a zero ShutdownDelay stops at once", "", Options{ShutdownDelay: ptr.To(time.Duration(0))}, func(o *Options) {
			defaults(o)
			o.ShutdownDelay = ptr.To(time.Duration(0))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("POD_NAMESPACE", tc.podNamespace)
			got := tc.in
			got.setDefaults()
			var want Options
			tc.want(&want)
			// Rules defaults to engine.DefaultConfig(), whose Rand is a
			// reader compared by identity below.
			if tc.in.Rules == nil {
				require.NotNil(t, got.Rules)
				assert.Equal(t, engine.DefaultConfig().Actions, got.Rules.Actions)
				assert.Empty(t, got.Rules.Exemptions)
				got.Rules = nil
			} else {
				assert.Same(t, tc.in.Rules, got.Rules)
				got.Rules, want.Rules = nil, nil
			}
			if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(Options{})); diff != "" {
				t.Errorf("setDefaults (-want +got):\n%s", diff)
			}
		})
	}
}

// DefaultDNSNames returns a new slice each call, so that setDefaults never
// shares one Options' names with another's.
func TestDefaultDNSNamesIsANewSlice(t *testing.T) {
	a := DefaultDNSNames()
	a[0] = "changed"
	assert.Equal(t, "stsguard.stsguard-system.svc", DefaultDNSNames()[0])
}

// writeKubeconfig writes a kubeconfig for server into dir and returns its
// path.
func writeKubeconfig(t *testing.T, dir, server string) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: server}
	kc.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "not-a-real-token"}
	kc.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	kc.CurrentContext = "c"
	path := filepath.Join(dir, "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*kc, path))
	return path
}

// The client configuration comes from RESTConfig, then Kubeconfig, then
// $KUBECONFIG (controller-runtime's lookup); a file that cannot be read is
// an error that names the flag.
func TestRestConfig(t *testing.T) {
	dir := t.TempDir()
	fromFlag := writeKubeconfig(t, t.TempDir(), "https://flag.example:6443")
	fromEnv := writeKubeconfig(t, t.TempDir(), "https://env.example:6443")
	cases := []struct {
		name       string
		o          Options
		kubeconfig string // $KUBECONFIG
		wantHost   string
		wantErr    string
	}{
		{"RESTConfig wins", Options{RESTConfig: &rest.Config{Host: "https://given.example"}, Kubeconfig: fromFlag}, fromEnv, "https://given.example", ""},
		{"Kubeconfig before $KUBECONFIG", Options{Kubeconfig: fromFlag}, fromEnv, "https://flag.example:6443", ""},
		{"$KUBECONFIG", Options{}, fromEnv, "https://env.example:6443", ""},
		{"a Kubeconfig that does not exist", Options{Kubeconfig: filepath.Join(dir, "missing")}, fromEnv, "", "loading --kubeconfig " + filepath.Join(dir, "missing")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KUBECONFIG", tc.kubeconfig)
			cfg, err := tc.o.restConfig()
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantHost, cfg.Host)
		})
	}
}

// trimObject drops what no rule reads and what may hold a copy of a
// secret value: managedFields and kubectl's last-applied annotation. It
// keeps every other annotation, and changes nothing else.
func TestTrimObject(t *testing.T) {
	managed := []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}}
	lastApplied := `{"apiVersion":"apps/v1","kind":"StatefulSet","spec":{"template":{"spec":{"containers":[{"env":[{"name":"PASSWORD","value":"not-for-the-cache"}]}]}}}}`
	cases := []struct {
		name string
		in   any
		want any
	}{
		{
			"StatefulSet with last-applied and managed fields",
			&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", ManagedFields: managed,
				Annotations: map[string]string{lastAppliedAnnotation: lastApplied, "stsguard.io/canary": "1"}},
				Spec: appsv1.StatefulSetSpec{ServiceName: "db"}},
			&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db",
				Annotations: map[string]string{"stsguard.io/canary": "1"}},
				Spec: appsv1.StatefulSetSpec{ServiceName: "db"}},
		},
		{
			"Service with last-applied only",
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db", Annotations: map[string]string{lastAppliedAnnotation: "{}"}}},
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db", Annotations: map[string]string{}}},
		},
		{
			"no annotations stay none",
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", ManagedFields: managed}},
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}},
		},
		{
			"a Secret's data is kept",
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Annotations: map[string]string{lastAppliedAnnotation: "{}"}},
				Data: map[string][]byte{"password": []byte("kept")}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Annotations: map[string]string{}},
				Data: map[string][]byte{"password": []byte("kept")}},
		},
		{
			"not an object: returned as it is",
			"a tombstone",
			"a tombstone",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := trimObject(tc.in)
			require.NoError(t, err)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("trimObject (-want +got):\n%s", diff)
			}
		})
	}
}

// Without a certificate in CertDir, stsguard serve generates a CA and a
// serving certificate for DNSNames there, and serves that.
func TestServingCertificateGeneratesOneWhenCertDirIsEmpty(t *testing.T) {
	o := Options{CertDir: filepath.Join(t.TempDir(), "certs"), DNSNames: []string{"stsguard.shop.svc"}}
	o.setDefaults()
	m, err := certs.NewMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	src, err := o.servingCertificate(&rest.Config{}, nil, m, logr.Discard())
	require.NoError(t, err)
	require.NoError(t, src.Ready(nil))
	cert, err := src.GetCertificate(nil)
	require.NoError(t, err)
	require.NotNil(t, cert.Leaf)
	assert.Equal(t, []string{"stsguard.shop.svc"}, cert.Leaf.DNSNames)
	for _, f := range []string{"ca.crt", "tls.crt", "tls.key"} {
		_, err := os.Stat(filepath.Join(o.CertDir, f))
		assert.NoError(t, err, f)
	}
}
