package lookuptest_test

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

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/internal/lookuptest"
)

var _ engine.Lookup = (*lookuptest.Objects)(nil)

func meta(ns, name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: ns, Name: name} }

func TestObjects(t *testing.T) {
	o, err := lookuptest.NewObjects(
		&corev1.Service{ObjectMeta: meta("a", "web")},
		&corev1.Secret{ObjectMeta: meta("a", "db")},
		&appsv1.StatefulSet{ObjectMeta: meta("a", "web")},
		&appsv1.StatefulSet{ObjectMeta: meta("b", "web")},
		&storagev1.StorageClass{ObjectMeta: meta("", "fast")},
		&corev1.Namespace{ObjectMeta: meta("", "a")},
	)
	require.NoError(t, err)

	svc, err := o.Service(context.Background(), "a", "web")
	require.NoError(t, err)
	assert.Equal(t, "web", svc.Name)
	_, err = o.Service(context.Background(), "b", "web")
	assert.True(t, apierrors.IsNotFound(err))
	_, err = o.Secret(context.Background(), "a", "nope")
	assert.True(t, apierrors.IsNotFound(err))
	_, err = o.StorageClass(context.Background(), "slow")
	assert.True(t, apierrors.IsNotFound(err))
	_, err = o.Namespace(context.Background(), "b")
	assert.True(t, apierrors.IsNotFound(err))

	stss, err := o.StatefulSets(context.Background(), "a")
	require.NoError(t, err)
	assert.Len(t, stss, 1)
	replaced := &appsv1.StatefulSet{ObjectMeta: meta("a", "web"), Spec: appsv1.StatefulSetSpec{ServiceName: "new"}}
	require.NoError(t, o.Add(replaced))
	stss, _ = o.StatefulSets(context.Background(), "a")
	require.Len(t, stss, 1, "the same name replaces")
	assert.Equal(t, "new", stss[0].Spec.ServiceName)
	none, err := o.StatefulSets(context.Background(), "c")
	assert.NoError(t, err)
	assert.Empty(t, none)
	scs, _ := o.StorageClasses(context.Background())
	assert.Len(t, scs, 1)

	assert.ErrorContains(t, o.Add(&corev1.Pod{}), "*v1.Pod is not a kind the rules read")
}
