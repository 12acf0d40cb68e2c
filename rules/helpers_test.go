package rules

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/internal/lookuptest"
)

// testConfig is DefaultConfig with a deterministic password source.
func testConfig() engine.Config {
	c := engine.DefaultConfig()
	c.Rand = bytes.NewReader(bytes.Repeat([]byte{7}, 4096))
	return c
}

// only returns cfg with every rule and mutator but ids turned off, so that a
// test sees the findings of the rules under test only.
func only(cfg engine.Config, ids ...string) engine.Config {
	cfg.Actions, cfg.Mutations = map[string]engine.Action{}, map[string]bool{}
	for _, m := range Catalog() {
		if slices.Contains(ids, m.ID) {
			continue
		}
		if m.Action == engine.Mutate {
			cfg.Mutations[m.ID] = false
		} else {
			cfg.Actions[m.ID] = engine.Off
		}
	}
	return cfg
}

// newEngine returns an engine that runs only the rules and mutators ids.
func newEngine(t testing.TB, ids ...string) *engine.Engine {
	t.Helper()
	e, err := New(only(testConfig(), ids...))
	require.NoError(t, err)
	return e
}

// admit runs in through e.Admit at phase.
func admit[T engine.Object](e *engine.Engine, phase engine.Phase, in *engine.Input[T], lk engine.Lookup) *engine.Decision {
	r := engine.NewRequest(phase, in)
	d, err := e.Admit(context.Background(), r, lk)
	if err != nil {
		panic(err)
	}
	return d
}

// validate is the validating webhook's decision on in.
func validate[T engine.Object](e *engine.Engine, in *engine.Input[T], lk engine.Lookup) engine.Result {
	d := admit(e, engine.Validating, in, lk)
	return engine.Result{Findings: d.Findings, Exemptions: d.Exemptions}
}

// mutate is the mutating webhook's decision on in: the object as it would
// be stored, the mutation and the findings.
func mutate[T engine.Object](e *engine.Engine, in *engine.Input[T], lk engine.Lookup) (T, *engine.Mutation, engine.Result) {
	d := admit(e, engine.Mutating, in, lk)
	var obj T
	if d.Object != nil {
		obj = d.Object.(T)
	}
	return obj, d.Mutation, engine.Result{Findings: d.Findings, Exemptions: d.Exemptions}
}

// objects is a Lookup over objs.
func objects(objs ...runtime.Object) *lookuptest.Objects { return lookuptest.MustObjects(objs...) }

// errLookup fails every read with err.
type errLookup struct{ err error }

func (l errLookup) Service(context.Context, string, string) (*corev1.Service, error) {
	return nil, l.err
}
func (l errLookup) Secret(context.Context, string, string) (*corev1.Secret, error) {
	return nil, l.err
}
func (l errLookup) StatefulSets(context.Context, string) ([]*appsv1.StatefulSet, error) {
	return nil, l.err
}
func (l errLookup) StorageClass(context.Context, string) (*storagev1.StorageClass, error) {
	return nil, l.err
}
func (l errLookup) StorageClasses(context.Context) ([]*storagev1.StorageClass, error) {
	return nil, l.err
}
func (l errLookup) Namespace(context.Context, string) (*corev1.Namespace, error) {
	return nil, l.err
}
func (l errLookup) PersistentVolumeClaims(context.Context, string) ([]*corev1.PersistentVolumeClaim, error) {
	return nil, l.err
}
func (l errLookup) StatefulSetsReferencingSecret(context.Context, string, string) ([]*appsv1.StatefulSet, error) {
	return nil, l.err
}

// internalFindings returns the findings that report a failure of stsguard
// itself (a Lookup error or a rule that panicked): field.ErrorTypeInternal.
func internalFindings(fs engine.Findings) engine.Findings {
	var out engine.Findings
	for _, f := range fs {
		if f.Error.Type == field.ErrorTypeInternal {
			out = append(out, f)
		}
	}
	return out
}
