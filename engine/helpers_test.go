package engine

import (
	"bytes"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/stsguard/stsguard/lookup"
)

// testConfig is DefaultConfig with a deterministic password source.
func testConfig() Config {
	c := DefaultConfig()
	c.Rand = bytes.NewReader(bytes.Repeat([]byte{7}, 4096))
	return c
}

// only returns cfg with every rule and mutator but ids turned off, so that a
// test sees the findings of the rules under test only.
func only(cfg Config, ids ...string) Config {
	cfg.Actions, cfg.Mutations = map[string]Action{}, map[string]bool{}
	for _, m := range catalog {
		if slices.Contains(ids, m.ID) {
			continue
		}
		if m.Action == Mutate {
			cfg.Mutations[m.ID] = false
		} else {
			cfg.Actions[m.ID] = Off
		}
	}
	return cfg
}

// engine returns an engine that runs only the rules and mutators ids.
func engine(t testing.TB, ids ...string) *Engine {
	t.Helper()
	e, err := New(only(testConfig(), ids...))
	require.NoError(t, err)
	return e
}

// objects is a Lookup over objs.
func objects(objs ...runtime.Object) *lookup.Objects { return lookup.MustObjects(objs...) }

// errLookup fails every read with err.
type errLookup struct{ err error }

func (l errLookup) Service(string, string) (*corev1.Service, error)      { return nil, l.err }
func (l errLookup) Secret(string, string) (*corev1.Secret, error)        { return nil, l.err }
func (l errLookup) StatefulSets(string) ([]*appsv1.StatefulSet, error)   { return nil, l.err }
func (l errLookup) StorageClass(string) (*storagev1.StorageClass, error) { return nil, l.err }
func (l errLookup) StorageClasses() ([]*storagev1.StorageClass, error)   { return nil, l.err }
func (l errLookup) Namespace(string) (*corev1.Namespace, error)          { return nil, l.err }
func (l errLookup) PersistentVolumeClaims(string) ([]*corev1.PersistentVolumeClaim, error) {
	return nil, l.err
}
func (l errLookup) StatefulSetsReferencingSecret(string, string) ([]*appsv1.StatefulSet, error) {
	return nil, l.err
}
