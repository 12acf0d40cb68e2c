package audit

import (
	"context"
	"fmt"
	"io"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/manifest"
)

// Source is what Run audits: manifests, the live objects of a cluster, or
// both.
type Source struct {
	// Files are manifest paths: files, directories (read recursively, as
	// kubectl apply -f --recursive reads them) and "-" for Stdin.
	Files []string
	// Stdin is read for the path "-".
	Stdin io.Reader
	// Cluster reads the live objects (see LoadCluster); nil for none.
	Cluster client.Reader
	// Namespace is the namespace of the manifests' objects that set none
	// ("" means "default"); with Cluster, the only namespace whose live
	// objects are read ("" means every namespace).
	Namespace string
}

// Run audits src with e, as `stsguard audit` does. With Files, their
// objects are replayed in kubectl apply's order on top of the live objects
// of Cluster, if any (see apply); with Cluster alone, the live objects are
// judged (Live). Manifests that cannot be read are in the report
// (Summary.Errors and the report's errors). It returns an error only when
// Cluster cannot be listed.
func Run(ctx context.Context, e *engine.Engine, src Source) (*Report, error) {
	var live []manifest.Object
	if src.Cluster != nil {
		var err error
		if live, err = LoadCluster(ctx, src.Cluster, src.Namespace); err != nil {
			return nil, fmt.Errorf("reading the cluster: %w", err)
		}
	}
	if len(src.Files) == 0 {
		return Live(e, live), nil
	}
	namespace := src.Namespace
	if namespace == "" {
		namespace = "default"
	}
	// Read defers the typed decoding of namespaced objects to the replay of
	// their namespace: the whole input is never held as typed objects at
	// once.
	r, errs := apply(e, manifest.Read(src.Files, src.Stdin, namespace), live)
	r.AddErrors(errs)
	return r, nil
}
