package webhook

import (
	"context"
	"errors"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// lines is a logger that records each line it writes.
func lines(out *[]string) logr.Logger {
	return funcr.New(func(prefix, args string) { *out = append(*out, prefix+" "+args) }, funcr.Options{Verbosity: 1})
}

// countingSink counts WithValues calls of the sink under it.
type countingSink struct {
	logr.LogSink
	withValues *int
}

func (c countingSink) WithValues(kv ...any) logr.LogSink {
	*c.withValues++
	return countingSink{c.LogSink.WithValues(kv...), c.withValues}
}

func (c countingSink) WithName(name string) logr.LogSink {
	return countingSink{c.LogSink.WithName(name), c.withValues}
}

// lazyLogConstructor's logger writes what DefaultLogConstructor's does,
// and adds the request's values only when a line is written.
func TestLazyLogConstructor(t *testing.T) {
	req := &admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "u-1", Namespace: "ns", Name: "web",
		Resource: metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"},
		UserInfo: authenticationv1.UserInfo{Username: "alice"},
	}}
	use := func(l logr.Logger) {
		l.Info("denied", "rules", "a,b", "dryRun", false)
		l.V(1).Info("verbose")
		l.V(2).Info("too verbose")
		l.Error(errors.New("boom"), "rule could not be evaluated", "rule", "x")
		l.WithValues("k", "v").Info("with values")
		l.WithName("sub").Info("with name")
		l.WithValues().Info("with no values")
	}
	for _, r := range []*admission.Request{req, nil} {
		var want, got []string
		use(admission.DefaultLogConstructor(lines(&want).WithName("admission"), r))
		use(lazyLogConstructor(lines(&got).WithName("admission"), r))
		assert.Equal(t, want, got)
		require.Len(t, got, 6)
	}

	n := 0
	base := logr.New(countingSink{funcr.New(func(string, string) {}, funcr.Options{}).GetSink(), &n})
	l := lazyLogConstructor(base, req)
	l.V(5).Info("received request")
	l = logf.FromContext(logr.NewContext(context.Background(), l)) // WithValues() of nothing
	assert.Zero(t, n, "nothing logged, no values added")
	l.Info("one")
	l.Info("two")
	assert.Equal(t, 1, n, "the values are added once")
}

// Every webhook builds its request loggers with lazyLogConstructor.
func TestWebhooksLogLazily(t *testing.T) {
	var out []string
	for path, wh := range (&Handlers{}).Webhooks() {
		require.NotNil(t, wh.LogConstructor, path)
		_, lazy := wh.LogConstructor(lines(&out), &admission.Request{}).GetSink().(*lazySink)
		assert.True(t, lazy, path)
	}
}
