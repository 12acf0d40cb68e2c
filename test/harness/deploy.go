package harness

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Kubectl returns the kubectl binary the tests render deploy/ with:
// $KUBECTL, then bin/k8s/kubectl (built by `make envtest-assets`, pinned
// to the apiserver's version), then kubectl on PATH. It returns an error
// naming what to do when there is none.
func Kubectl() (string, error) {
	if k := os.Getenv("KUBECTL"); k != "" {
		return k, nil
	}
	if k := filepath.Join(AssetsDir(), "kubectl"); isExecutable(k) {
		return k, nil
	}
	if k, err := exec.LookPath("kubectl"); err == nil {
		return k, nil
	}
	return "", errors.New("kubectl not found: run `make envtest-assets` (builds it into bin/k8s) or put kubectl on PATH")
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// Render returns `kubectl kustomize deploy/<overlay>`: the manifests a
// user applies with `kubectl apply -k deploy/<overlay>`. It returns an
// error with kubectl's output when rendering fails.
func Render(overlay string) ([]byte, error) {
	k, err := Kubectl()
	if err != nil {
		return nil, err
	}
	var out, stderr bytes.Buffer
	cmd := exec.Command(k, "kustomize", filepath.Join(Root(), "deploy", overlay))
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("kubectl kustomize deploy/%s: %w: %s", overlay, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out.Bytes(), nil
}

// WebhookConfigurations returns the MutatingWebhookConfigurations and
// ValidatingWebhookConfigurations among objs.
func WebhookConfigurations(objs []client.Object) ([]*admissionregistrationv1.MutatingWebhookConfiguration, []*admissionregistrationv1.ValidatingWebhookConfiguration) {
	var m []*admissionregistrationv1.MutatingWebhookConfiguration
	var v []*admissionregistrationv1.ValidatingWebhookConfiguration
	for _, o := range objs {
		switch c := o.(type) {
		case *admissionregistrationv1.MutatingWebhookConfiguration:
			m = append(m, c)
		case *admissionregistrationv1.ValidatingWebhookConfiguration:
			v = append(v, c)
		}
	}
	return m, v
}
