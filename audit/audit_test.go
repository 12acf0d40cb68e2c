package audit

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/manifest"
	"github.com/stsguard/stsguard/rules"
)

// Manifests of the tests: each a YAML document (with its "---").
const (
	// clusterIPService sets no clusterIP: headless-service-default makes
	// it headless only when a StatefulSet naming it is stored first.
	clusterIPService = `---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
`
	headlessService = `---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: None
  selector: {app: web}
`
	webStatefulSet = `---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx, readinessProbe: {tcpSocket: {port: 80}}}]
`
	// dbStatefulSet reads Secret db key password and puts its data on
	// StorageClass fast.
	dbStatefulSet = `---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 120
      containers:
      - name: db
        image: postgres:17
        readinessProbe: {tcpSocket: {port: 5432}}
        env:
        - name: POSTGRES_PASSWORD
          valueFrom: {secretKeyRef: {name: db, key: password}}
        volumeMounts: [{name: data, mountPath: /var/lib/postgresql/data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      storageClassName: fast
      resources: {requests: {storage: 1Gi}}
`
	dbService = `---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
`
	dbSecret = `---
apiVersion: v1
kind: Secret
metadata: {name: db}
stringData: {password: Kq3-strong-and-long-enough}
`
	fastClass = `---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: fast}
provisioner: csi.example.com
allowVolumeExpansion: true
`
	// literalStatefulSet writes a literal password, which
	// password-secret-ref moves into Secret app-credentials.
	literalStatefulSet = `---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: app}
spec:
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: nginx
        readinessProbe: {tcpSocket: {port: 80}}
        env: [{name: APP_PASSWORD, value: "Zt8q-a-literal-but-not-weak"}]
`
	// readerStatefulSet reads the Secret password-secret-ref writes for
	// StatefulSet app.
	readerStatefulSet = `---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: reader}
spec:
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: reader
        image: nginx
        readinessProbe: {tcpSocket: {port: 80}}
        env: [{name: APP_PASSWORD, valueFrom: {secretKeyRef: {name: app-credentials, key: app-password}}}]
`
	// weakStatefulSet is denied for its default password.
	weakStatefulSet = `---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: mysql
        image: mysql:8.4
        readinessProbe: {tcpSocket: {port: 3306}}
        env: [{name: MYSQL_ROOT_PASSWORD, value: password}]
`
)

func newEngine(t testing.TB) *engine.Engine {
	t.Helper()
	e, err := rules.New(engine.DefaultConfig())
	require.NoError(t, err)
	return e
}

func parse(t testing.TB, file, data string) []manifest.Object {
	t.Helper()
	objs, errs := manifest.Parse(file, []byte(data), "default")
	require.Empty(t, errs)
	return objs
}

// decisions renders a report's decisions as "Kind/name OPERATION denied
// deny=[..] warn=[..] mutations=[..]" lines, the way the tests compare them.
func decisions(r *Report) []string {
	var out []string
	for _, d := range r.Objects {
		s := d.Kind + "/" + d.Name + " " + string(d.Operation)
		if d.Denied {
			s += " denied"
		}
		if len(d.Deny) > 0 {
			s += " deny=" + strings.Join(d.Deny, ",")
		}
		if len(d.Warn) > 0 {
			s += " warn=" + strings.Join(d.Warn, ",")
		}
		if len(d.Mutations) > 0 {
			s += " mutations=" + strings.Join(d.Mutations, ",")
		}
		out = append(out, s)
	}
	return out
}

// TestApplyReplaysInOrder: each object is judged in the world the objects
// before it leave, as kubectl apply -f sends them.
func TestApplyReplaysInOrder(t *testing.T) {
	cases := []struct {
		name     string
		manifest string
		want     []string
	}{{
		// kubectl apply, Helm and kustomize all create the Service first:
		// it keeps the cluster IP the apiserver gives it, and the
		// StatefulSet is denied.
		name:     "Service without clusterIP before its StatefulSet",
		manifest: clusterIPService + webStatefulSet,
		want: []string{
			"Service/web CREATE",
			"StatefulSet/web CREATE denied deny=headless-service-not-headless",
		},
	}, {
		// The StatefulSet is stored first (its missing Service is only a
		// Warn), so the Service is created headless.
		name:     "StatefulSet before its Service without clusterIP",
		manifest: webStatefulSet + clusterIPService,
		want: []string{
			"StatefulSet/web CREATE warn=headless-service-missing",
			"Service/web CREATE mutations=headless-service-default",
		},
	}, {
		name:     "headless Service before its StatefulSet",
		manifest: headlessService + webStatefulSet,
		want:     []string{"Service/web CREATE", "StatefulSet/web CREATE"},
	}, {
		// A denied StatefulSet is never stored: nothing names the Service
		// when it arrives, so it is not made headless.
		name:     "a denied StatefulSet is not stored",
		manifest: weakStatefulSet + clusterIPService,
		want: []string{
			"StatefulSet/web CREATE denied deny=weak-password warn=headless-service-missing",
			"Service/web CREATE",
		},
	}, {
		name:     "Secret and StorageClass after the StatefulSet that reads them",
		manifest: dbService + dbStatefulSet + dbSecret + fastClass,
		want: []string{
			"Service/db CREATE",
			"StatefulSet/db CREATE warn=secret-ref-missing,storage-class-not-found",
			"Secret/db CREATE",
		},
	}, {
		name:     "Secret and StorageClass before the StatefulSet",
		manifest: fastClass + dbSecret + dbService + dbStatefulSet,
		want:     []string{"Secret/db CREATE", "Service/db CREATE", "StatefulSet/db CREATE"},
	}, {
		// password-secret-ref writes Secret app-credentials while it
		// admits app: the next StatefulSet finds it.
		name:     "the Secret password-secret-ref writes exists afterwards",
		manifest: headlessService + literalStatefulSet + readerStatefulSet,
		want: []string{
			"Service/web CREATE",
			"StatefulSet/app CREATE mutations=password-secret-ref",
			"StatefulSet/reader CREATE",
		},
	}, {
		name:     "a reference to that Secret before it is written",
		manifest: headlessService + readerStatefulSet + literalStatefulSet,
		want: []string{
			"Service/web CREATE",
			"StatefulSet/reader CREATE warn=secret-ref-missing",
			"StatefulSet/app CREATE mutations=password-secret-ref",
		},
	}, {
		// kubectl apply of an object that exists patches it: an UPDATE,
		// which changes nothing when the manifest is the same. The
		// StatefulSet keeps the grace period stsguard raised (the field is
		// in no applied configuration), so its template does not change:
		// nothing stsguard judges changes, and the apiserver does not call
		// it (the matchCondition changes-what-stsguard-judges); the Service
		// keeps its cluster IP.
		name: "the same objects applied twice",
		manifest: clusterIPService + strings.ReplaceAll(dbStatefulSet, "terminationGracePeriodSeconds: 120", "hostname: x") +
			clusterIPService + strings.ReplaceAll(dbStatefulSet, "terminationGracePeriodSeconds: 120", "hostname: x"),
		want: []string{
			"Service/web CREATE",
			"StatefulSet/db CREATE warn=headless-service-missing,secret-ref-missing,storage-class-not-found mutations=termination-grace-period",
			"Service/web UPDATE",
			"StatefulSet/db UPDATE",
		},
	}}
	e := newEngine(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := replayObjects(e, parse(t, "f.yaml", tc.manifest), nil)
			assert.Equal(t, tc.want, decisions(r))
		})
	}
}

func TestServiceBeforeStatefulSetIsDeniedWithAHint(t *testing.T) {
	r := replayObjects(newEngine(t), parse(t, "web.yaml", clusterIPService+webStatefulSet), nil)
	require.Len(t, r.Objects, 2)
	sts := r.Objects[1]
	require.True(t, sts.Denied)
	fs := r.FindingsOf(&sts)
	require.Len(t, fs, 1)
	f := fs[0]
	assert.Equal(t, engine.Deny, f.Action)
	assert.Equal(t, "spec.serviceName", f.Field)
	assert.Contains(t, f.Message, `Service "web" is not headless (spec.type is "ClusterIP")`)
	assert.Contains(t, f.Hint, `Service "web" (web.yaml:2) is created before this StatefulSet and sets no clusterIP`)
	assert.Contains(t, f.Hint, "Set spec.clusterIP: None in the Service's manifest")
	assert.Equal(t, 1, r.Summary.Denied)
	assert.Equal(t, 1, r.Summary.Deny)
	assert.Empty(t, sts.Patch, "a denied request gets no patch")
}

func TestNoOrderHintForANodePortService(t *testing.T) {
	nodePort := strings.Replace(clusterIPService, "spec:", "spec:\n  type: NodePort", 1)
	r := replayObjects(newEngine(t), parse(t, "web.yaml", nodePort+webStatefulSet), nil)
	require.Len(t, r.Objects, 2)
	require.True(t, r.Objects[1].Denied, "a NodePort Service cannot be headless, whatever the order")
	for _, f := range r.FindingsOf(&r.Objects[1]) {
		assert.Empty(t, f.Hint)
	}
}

// TestServiceAfterStatefulSetIsNamedInAHint: headless-service-missing on a
// StatefulSet whose Service the input creates further down names that
// Service and its place; no other finding, and no other Service, does.
func TestServiceAfterStatefulSetIsNamedInAHint(t *testing.T) {
	inNamespace := func(doc, ns string) string {
		return strings.Replace(doc, "metadata: {name: web}", "metadata: {name: web, namespace: "+ns+"}", 1)
	}
	renamed := strings.Replace(headlessService, "name: web", "name: web-other", 1)
	cases := []struct {
		name     string
		manifest string
		wantHint string // "" for none
	}{
		{"headless Service further down", webStatefulSet + headlessService,
			`Service "web" (web.yaml:13) is created further down in this input, after this StatefulSet`},
		{"Service without clusterIP further down", webStatefulSet + clusterIPService,
			`Service "web" (web.yaml:13) is created further down`},
		{"the first of two Services of that name further down", webStatefulSet + renamed + headlessService + clusterIPService,
			`Service "web" (web.yaml:20) is created further down`},
		{"no Service of that name", webStatefulSet + renamed, ""},
		{"the Service further down is in another namespace", webStatefulSet + inNamespace(headlessService, "other"), ""},
	}
	e := newEngine(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := replayObjects(e, parse(t, "web.yaml", tc.manifest), nil)
			require.NotEmpty(t, r.Objects)
			sts := r.Objects[0]
			require.Equal(t, "StatefulSet", sts.Kind)
			assert.Equal(t, []string{rules.HeadlessServiceMissing}, sts.Warn)
			var hints []string
			for _, f := range r.Findings {
				if f.Hint != "" {
					assert.Equal(t, rules.HeadlessServiceMissing, f.Rule)
					assert.Equal(t, "spec.serviceName", f.Field)
					hints = append(hints, f.Hint)
				}
			}
			if tc.wantHint == "" {
				assert.Empty(t, hints)
				return
			}
			require.Len(t, hints, 1)
			assert.Contains(t, hints[0], tc.wantHint)
		})
	}
}

func TestDecisionReportsPatchAndSecrets(t *testing.T) {
	r := replayObjects(newEngine(t), parse(t, "f.yaml", webStatefulSet+clusterIPService+literalStatefulSet), nil)
	require.Len(t, r.Objects, 3)
	svc := r.Objects[1]
	assert.Equal(t, []string{"headless-service-default"}, svc.Mutations)
	require.Len(t, svc.Patch, 1)
	assert.Equal(t, "/spec/clusterIP", svc.Patch[0].Path)
	assert.Equal(t, "None", svc.Patch[0].Value)

	app := r.Objects[2]
	assert.Equal(t, []SecretWrite{{Namespace: "default", Name: "app-credentials", Create: true, Keys: []string{"app-password"}}}, app.Secrets)
	require.Len(t, app.Patch, 1)
	assert.Equal(t, "/spec/template/spec/containers/0/env/0", app.Patch[0].Path)
}

// TestApplyFollowsFileAndDirectoryOrder: the order comes from manifest.Read
// (files as given, a directory's files by name, documents in order).
func TestApplyFollowsFileAndDirectoryOrder(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"svc-first/1-service.yaml":     clusterIPService,
		"svc-first/2-statefulset.yaml": webStatefulSet,
		"sts-first/1-statefulset.yaml": webStatefulSet,
		"sts-first/2-service.yaml":     clusterIPService,
	}
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	denied := []string{"Service/web CREATE", "StatefulSet/web CREATE denied deny=headless-service-not-headless"}
	admitted := []string{"StatefulSet/web CREATE warn=headless-service-missing", "Service/web CREATE mutations=headless-service-default"}
	cases := []struct {
		name  string
		paths []string
		want  []string
	}{
		{"directory, Service file sorts first", []string{"svc-first"}, denied},
		{"directory, StatefulSet file sorts first", []string{"sts-first"}, admitted},
		{"files in the order given", []string{"svc-first/2-statefulset.yaml", "svc-first/1-service.yaml"}, admitted},
		{"files in the order given, reversed", []string{"sts-first/2-service.yaml", "sts-first/1-statefulset.yaml"}, denied},
	}
	e := newEngine(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var paths []string
			for _, p := range tc.paths {
				paths = append(paths, filepath.Join(dir, filepath.FromSlash(p)))
			}
			objs, errs := decodeAll(manifest.Read(paths, nil, "default"))
			require.Empty(t, errs)
			assert.Equal(t, tc.want, decisions(replayObjects(e, objs, nil)))
		})
	}
}

// liveService is a Service as the apiserver stores it: with its cluster IP.
func liveService(clusterIP string) manifest.Object {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "u1", ResourceVersion: "7"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: clusterIP, ClusterIPs: []string{clusterIP},
			Selector: map[string]string{"app": "web"}}}
	return manifest.Object{Object: svc, GVK: corev1.SchemeGroupVersion.WithKind("Service"), Namespace: "default", Name: "web"}
}

func TestApplyAgainstLiveObjects(t *testing.T) {
	e := newEngine(t)
	t.Run("a live headless Service pairs with the manifest's StatefulSet", func(t *testing.T) {
		r := replayObjects(e, parse(t, "f.yaml", webStatefulSet), []manifest.Object{liveService("None")})
		assert.Equal(t, []string{"StatefulSet/web CREATE"}, decisions(r))
	})
	t.Run("a live ClusterIP Service applied again keeps its cluster IP", func(t *testing.T) {
		r := replayObjects(e, parse(t, "f.yaml", clusterIPService+webStatefulSet), []manifest.Object{liveService("10.0.0.7")})
		assert.Equal(t, []string{"Service/web UPDATE", "StatefulSet/web CREATE denied deny=headless-service-not-headless"}, decisions(r))
		fs := r.FindingsOf(&r.Objects[1])
		require.Len(t, fs, 1)
		assert.Contains(t, fs[0].Message, `(spec.clusterIP is "10.0.0.7")`)
		assert.Empty(t, fs[0].Hint, "the live Service was not created by this replay")
	})
}

// A StatefulSet with a volumeClaimTemplate applied again over the live
// one, which holds what the apiserver set (volumeMode Filesystem, status
// phase Pending; read as protobuf, no kind in the templates): kubectl's
// merge replaces the template list whole, and the apiserver defaults it
// again, so nothing changes and nothing is denied.
func TestReapplyOverALiveStatefulSetWithVolumeClaimTemplates(t *testing.T) {
	const withTemplate = `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: default}
spec:
  serviceName: ""
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: nginx, readinessProbe: {tcpSocket: {port: 80}}}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
`
	live := parse(t, "", withTemplate)
	sts := live[0].Object.(*appsv1.StatefulSet)
	fs := corev1.PersistentVolumeFilesystem
	sts.UID, sts.ResourceVersion = "u2", "9"
	sts.Spec.VolumeClaimTemplates[0].Spec.VolumeMode = &fs
	sts.Spec.VolumeClaimTemplates[0].Status.Phase = corev1.ClaimPending
	live[0].File, live[0].Line = "", 0
	r := replayObjects(newEngine(t), parse(t, "f.yaml", withTemplate), live)
	assert.Equal(t, []string{"StatefulSet/db UPDATE"}, decisions(r), "nothing changed that stsguard judges: not sent, no volume-claim-template-immutable")
}

func TestLiveJudgesEachObjectAgainstAllOthers(t *testing.T) {
	live := append([]manifest.Object{liveService("10.0.0.7")}, parse(t, "", webStatefulSet)...)
	live[1].File, live[1].Line = "", 0
	r := Live(newEngine(t), live)
	assert.Equal(t, []string{
		"Service/web CREATE denied deny=headless-service-not-headless",
		"StatefulSet/web CREATE denied deny=headless-service-not-headless",
	}, decisions(r))
}

// TestApplyIsTheSequentialReplay: namespaces are replayed in parallel, and
// a StorageClass is seen from its place on in every namespace; the report
// is the same on one CPU as on several.
func TestApplyIsTheSequentialReplay(t *testing.T) {
	var b strings.Builder
	for i, ns := range []string{"a", "b", "c", "d", "e", "f"} {
		if i == 3 {
			b.WriteString(fastClass)
		}
		for _, doc := range []string{dbService, dbStatefulSet, dbSecret, clusterIPService, webStatefulSet} {
			b.WriteString(strings.Replace(doc, "metadata: {", "metadata: {namespace: "+ns+", ", 1))
		}
	}
	objs := parse(t, "many.yaml", b.String())
	e := newEngine(t)
	prev := runtime.GOMAXPROCS(1)
	one := replayObjects(e, objs, nil)
	runtime.GOMAXPROCS(4)
	many := replayObjects(e, objs, nil)
	runtime.GOMAXPROCS(prev)
	assert.Equal(t, decisions(one), decisions(many))
	assert.Equal(t, one.Findings, many.Findings)
	var classWarnings []string
	for _, d := range many.Objects {
		if d.Kind == "StatefulSet" && d.Name == "db" {
			assert.Equal(t, admissionv1.Create, d.Operation)
			classWarnings = append(classWarnings, d.Namespace+":"+strings.Join(d.Warn, ","))
		}
	}
	assert.Equal(t, []string{
		"a:secret-ref-missing,storage-class-not-found", "b:secret-ref-missing,storage-class-not-found", "c:secret-ref-missing,storage-class-not-found",
		"d:secret-ref-missing", "e:secret-ref-missing", "f:secret-ref-missing",
	}, classWarnings)
}

// TestMergeIsKubectlApply: an UPDATE carries what kubectl apply's three-way
// merge sends: a field dropped from the last-applied configuration is
// removed, a field no configuration set is kept, a Service keeps its
// cluster IP.
func TestMergeIsKubectlApply(t *testing.T) {
	live := parse(t, "", strings.Replace(webStatefulSet, "serviceName: web", "serviceName: web\n  replicas: 3\n  minReadySeconds: 5", 1))[0].Object.(*appsv1.StatefulSet)
	live.Annotations = map[string]string{lastAppliedAnnotation: `{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"web"},"spec":{"replicas":3}}`}
	live.UID = "u1"
	live.Status.Replicas = 3
	obj := parse(t, "", webStatefulSet)[0].Object.(*appsv1.StatefulSet)
	got := merge(&stored[*appsv1.StatefulSet]{obj: live}, obj)
	assert.Nil(t, got.Spec.Replicas, "replicas was in the last-applied configuration and is not in the manifest: removed")
	assert.Equal(t, int32(5), got.Spec.MinReadySeconds, "minReadySeconds was in no applied configuration: kept")
	assert.Equal(t, "web", got.Spec.ServiceName)
	assert.Equal(t, live.UID, got.UID)
	assert.Equal(t, int32(3), got.Status.Replicas, "status is the stored one")

	svc := liveService("10.0.0.7").Object.(*corev1.Service)
	manifestSvc := parse(t, "", strings.Replace(clusterIPService, "spec:", "spec:\n  clusterIP: None", 1))[0].Object.(*corev1.Service)
	gotSvc := merge(&stored[*corev1.Service]{obj: svc}, manifestSvc)
	assert.Equal(t, "10.0.0.7", gotSvc.Spec.ClusterIP, "clusterIP cannot change once set")
	assert.Equal(t, []corev1.ServicePort{{Port: 80}}, gotSvc.Spec.Ports)
}

// The rewrite of kubectl's last-applied configuration is reported without
// its value: a copy of the whole manifest does not belong in a report.
func TestLastAppliedRewriteIsRedactedInReports(t *testing.T) {
	const sts = `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"db"},"spec":{"template":{"spec":{"containers":[{"name":"db","env":[{"name":"MYSQL_ROOT_PASSWORD","value":"n0t-a-default-9"},{"name":"OTHER_SETTING","value":"do-not-copy-me"}]}]}}}}'
spec:
  serviceName: ""
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - name: db
        image: mysql:8.0
        readinessProbe: {tcpSocket: {port: 3306}}
        env:
        - {name: MYSQL_ROOT_PASSWORD, value: n0t-a-default-9}
        - {name: OTHER_SETTING, value: do-not-copy-me}
`
	r := replayObjects(newEngine(t), parse(t, "f.yaml", sts), nil)
	require.Len(t, r.Objects, 1)
	raw, err := json.Marshal(r)
	require.NoError(t, err)
	assert.Contains(t, string(raw), "last-applied-configuration, rewritten")
	assert.NotContains(t, string(raw), "do-not-copy-me")
	assert.NotContains(t, string(raw), "n0t-a-default-9")
}

// sent mirrors the webhook configurations' matchCondition
// changes-what-stsguard-judges.
func TestSentMirrorsTheMatchCondition(t *testing.T) {
	sts := func(mod func(*appsv1.StatefulSet)) *appsv1.StatefulSet {
		s := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Annotations: map[string]string{"a": "1", "stsguard.io/canary": "1"}}}
		if mod != nil {
			mod(s)
		}
		return s
	}
	sec := func(mod func(*corev1.Secret)) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"}, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"k": []byte("v")}}
		if mod != nil {
			mod(s)
		}
		return s
	}
	cases := []struct {
		name string
		got  bool
		want bool
	}{
		{"a CREATE", sent(&engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Create, Object: sts(nil)}), true},
		{"a label", sent(&engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Update, OldObject: sts(nil),
			Object: sts(func(s *appsv1.StatefulSet) { s.Labels = map[string]string{"team": "db"} })}), false},
		{"someone else's annotation", sent(&engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Update, OldObject: sts(nil),
			Object: sts(func(s *appsv1.StatefulSet) { s.Annotations["a"] = "2" })}), false},
		{"stsguard's annotation", sent(&engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Update, OldObject: sts(nil),
			Object: sts(func(s *appsv1.StatefulSet) { delete(s.Annotations, "stsguard.io/canary") })}), true},
		{"the spec", sent(&engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Update, OldObject: sts(nil),
			Object: sts(func(s *appsv1.StatefulSet) { s.Spec.ServiceName = "x" })}), true},
		{"a Secret's label", sent(&engine.Input[*corev1.Secret]{Operation: admissionv1.Update, OldObject: sec(nil),
			Object: sec(func(s *corev1.Secret) { s.Labels = map[string]string{"team": "db"} })}), false},
		{"a Secret's data", sent(&engine.Input[*corev1.Secret]{Operation: admissionv1.Update, OldObject: sec(nil),
			Object: sec(func(s *corev1.Secret) { s.Data["k"] = []byte("w") })}), true},
		{"a Secret's stringData", sent(&engine.Input[*corev1.Secret]{Operation: admissionv1.Update, OldObject: sec(nil),
			Object: sec(func(s *corev1.Secret) { s.StringData = map[string]string{"k": "v"} })}), true},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, tc.got, tc.name)
	}
}

// replayObjects replays objs over existing, as apply replays manifest.Read's
// entries.
func replayObjects(e *engine.Engine, objs []manifest.Object, existing []manifest.Object) *Report {
	entries := make([]manifest.Entry, len(objs))
	for i, o := range objs {
		entries[i].Object = o
	}
	r, _ := apply(e, entries, existing)
	return r
}

// decodeAll decodes every entry and splits them into objects and errors.
func decodeAll(entries []manifest.Entry) ([]manifest.Object, []error) {
	var objs []manifest.Object
	var errs []error
	for i := range entries {
		o, err := entries[i].Decode()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		objs = append(objs, o)
	}
	return objs, errs
}
