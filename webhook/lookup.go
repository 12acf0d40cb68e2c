package webhook

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/webhook/rules"
)

// ReaderLookup is a rules.Lookup over a controller-runtime reader: the
// manager's informer cache in the server (configured with
// ReaderFailOnMissingInformer, so a read never starts an informer or calls
// the API), an API reader elsewhere.
type ReaderLookup struct {
	Ctx    context.Context
	Reader client.Reader
}

var _ rules.Lookup = ReaderLookup{}

// Service returns the Service namespace/name, or a NotFound error.
func (l ReaderLookup) Service(namespace, name string) (*corev1.Service, error) {
	svc := &corev1.Service{}
	if err := l.Reader.Get(l.Ctx, types.NamespacedName{Namespace: namespace, Name: name}, svc); err != nil {
		return nil, err
	}
	return svc, nil
}

// Secret returns the Secret namespace/name, or a NotFound error.
func (l ReaderLookup) Secret(namespace, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	if err := l.Reader.Get(l.Ctx, types.NamespacedName{Namespace: namespace, Name: name}, s); err != nil {
		return nil, err
	}
	return s, nil
}
