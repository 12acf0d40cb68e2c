package harness

import (
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/internal/apiwarnings"
)

// Warnings records the API warnings (the "Warning:" lines kubectl prints)
// that a client receives.
type Warnings = apiwarnings.Recorder

// NewClient returns a client for cfg that records its warnings.
func NewClient(cfg *rest.Config) (client.Client, *Warnings, error) {
	w := &Warnings{}
	cfg = rest.CopyConfig(cfg)
	cfg.WarningHandlerWithContext = w
	c, err := client.New(cfg, client.Options{})
	return c, w, err
}
