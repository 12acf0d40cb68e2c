package lookup_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/lookup"
)

var (
	_ engine.Lookup = lookup.Reader{}
)

func meta(ns, name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: ns, Name: name} }

// Without Live a cache miss is final; every kind but Service and Secret is
// read from the cache alone.
func TestReaderCacheOnly(t *testing.T) {
	cache := fake.NewClientBuilder().WithObjects(
		&appsv1.StatefulSet{ObjectMeta: meta("a", "web")},
		&storagev1.StorageClass{ObjectMeta: meta("", "fast")},
		&corev1.Namespace{ObjectMeta: meta("", "a")},
		&corev1.Service{ObjectMeta: meta("a", "web")},
	).Build()
	r := lookup.Reader{Cache: cache}

	svc, err := r.Service(context.Background(), "a", "web")
	require.NoError(t, err)
	assert.Equal(t, "web", svc.Name)
	_, err = r.Secret(context.Background(), "a", "fresh")
	assert.True(t, apierrors.IsNotFound(err), "without Live a cache miss is final")
	_, err = r.Service(context.Background(), "a", "gone")
	assert.True(t, apierrors.IsNotFound(err))

	stss, err := r.StatefulSets(context.Background(), "a")
	require.NoError(t, err)
	assert.Len(t, stss, 1)
	scs, err := r.StorageClasses(context.Background())
	require.NoError(t, err)
	assert.Len(t, scs, 1)
	_, err = r.StorageClass(context.Background(), "fast")
	assert.NoError(t, err)
	_, err = r.Namespace(context.Background(), "a")
	assert.NoError(t, err)
	_, err = r.StorageClass(context.Background(), "slow")
	assert.True(t, apierrors.IsNotFound(err))
}
