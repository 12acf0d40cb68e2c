package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Root returns the repository root (the directory holding go.mod), found
// from this source file.
func Root() string {
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// AssetsDir returns $KUBEBUILDER_ASSETS, or bin/k8s under the repository root.
func AssetsDir() string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	return filepath.Join(Root(), "bin", "k8s")
}

// FeatureGatesEnv names the environment variable that holds the
// --feature-gates the apiserver, the controller manager and the scheduler
// run with (for example "StatefulSetRecreateStrategy=true"); unset, each
// runs with its version's defaults. `make test-versions` sets it for the
// versions whose tests need an alpha feature.
const FeatureGatesEnv = "STSGUARD_TEST_FEATURE_GATES"

// FeatureGates returns $STSGUARD_TEST_FEATURE_GATES (see FeatureGatesEnv).
func FeatureGates() string { return os.Getenv(FeatureGatesEnv) }

// ErrNoAssets is returned by Start when kube-apiserver or etcd is missing.
var ErrNoAssets = errors.New("envtest binaries missing")

// buildHint says how to build the binaries of the assets directory assets:
// `make envtest-assets` for bin/k8s, build.sh with the version for another
// Kubernetes version's bin/k8s-<version>.
func buildHint(assets string) string {
	if v, ok := strings.CutPrefix(filepath.Base(assets), "k8s-"); ok {
		return fmt.Sprintf("run `hack/envtest/build.sh %s %s` (`make test-versions` does) to build Kubernetes %s into it", assets, v, v)
	}
	return "run `make envtest-assets` (builds the local cluster into bin/k8s)"
}

// ControlPlane is a running envtest control plane with stsguard's webhook
// configurations installed, pointing at Webhook.
type ControlPlane struct {
	Env *envtest.Environment
	// Config is an admin client configuration.
	Config *rest.Config
	// Webhook is where the apiserver sends AdmissionReviews: serve stsguard
	// on Webhook.LocalServingHost:LocalServingPort with the certificates in
	// Webhook.LocalServingCertDir.
	Webhook *envtest.WebhookInstallOptions
}

// Start starts kube-apiserver and etcd and installs the webhook
// configurations of `kubectl kustomize deploy/base`, as rendered, with
// envtest pointing their clientConfig at a local port and CA. Stop it with
// Stop.
func Start() (*ControlPlane, error) { return start(nil) }

// start is Start with configure, when not nil, called on the environment
// before it starts (to change the apiserver's flags).
func start(configure func(*envtest.Environment)) (*ControlPlane, error) {
	assets := AssetsDir()
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(assets, b)); err != nil {
			return nil, fmt.Errorf("%w: no %s in %s: %s", ErrNoAssets, b, assets, buildHint(assets))
		}
	}
	rendered, err := Render("base")
	if err != nil {
		return nil, err
	}
	objs, err := Decode(bytes.NewReader(rendered))
	if err != nil {
		return nil, fmt.Errorf("decoding deploy/base: %w", err)
	}
	mutating, validating := WebhookConfigurations(objs)
	if len(mutating) == 0 || len(validating) == 0 {
		return nil, errors.New("deploy/base renders no MutatingWebhookConfiguration or no ValidatingWebhookConfiguration")
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		WebhookInstallOptions: envtest.WebhookInstallOptions{
			MutatingWebhooks:   mutating,
			ValidatingWebhooks: validating,
			LocalServingHost:   "127.0.0.1",
		},
		ControlPlaneStartTimeout: 60 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	if gates := FeatureGates(); gates != "" {
		env.ControlPlane.GetAPIServer().Configure().Set("feature-gates", gates)
	}
	if configure != nil {
		configure(env)
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting envtest control plane: %w", err)
	}
	return &ControlPlane{Env: env, Config: cfg, Webhook: &env.WebhookInstallOptions}, nil
}

// Stop stops the control plane.
func (cp *ControlPlane) Stop() error { return cp.Env.Stop() }

// WriteKubeconfig writes a kubeconfig for the admin user to path.
func (cp *ControlPlane) WriteKubeconfig(path string) error {
	c := cp.Config
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: c.Host, CertificateAuthorityData: c.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: c.CertData, ClientKeyData: c.KeyData, Token: c.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	kc.CurrentContext = "envtest"
	return clientcmd.WriteToFile(*kc, path)
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// WaitReady polls http://probeAddr/readyz until it answers 200 or timeout
// passes, and returns the last error on timeout.
func WaitReady(ctx context.Context, probeAddr string, timeout time.Duration) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+probeAddr+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			last = err
			return false, nil
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			last = fmt.Errorf("readyz: %s: %s", resp.Status, bytes.TrimSpace(body))
			return false, nil
		}
		return true, nil
	})
	if err != nil && last != nil {
		return fmt.Errorf("stsguard not ready after %s: %w", timeout, last)
	}
	return err
}

// Decode reads every object of a multi-document YAML or JSON stream into
// typed objects of client-go's scheme, strictly: an unknown or duplicate
// field is an error, as under kubectl --validate=strict. Empty documents are
// skipped; an object of an unknown kind is an error naming the document.
func Decode(r io.Reader) ([]client.Object, error) {
	return DecodeWith(clientgoscheme.Scheme, r)
}

// DecodeWith is Decode into the types of scheme (for example client-go's
// and cert-manager's).
func DecodeWith(scheme *runtime.Scheme, r io.Reader) ([]client.Object, error) {
	codecs := serializer.NewCodecFactory(scheme, serializer.EnableStrict)
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var out []client.Object
	for n := 1; ; n++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj, _, err := codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		co, ok := obj.(client.Object)
		if !ok {
			return nil, fmt.Errorf("document %d: %T is not an object", n, obj)
		}
		out = append(out, co)
	}
}

// DecodeFile is Decode of the file at path.
func DecodeFile(path string) ([]client.Object, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	objs, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return objs, nil
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			b.Write(line)
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// Port returns the port of a host:port address.
func Port(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}
