package engine

import (
	"fmt"

	"github.com/stsguard/stsguard/credentials"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// WithoutSecret returns the mutation as it is when Secret request sr cannot
// be written: without sr and without every change of the mutator that
// requested it, since they all rely on it (the env vars moved into the
// Secret, a generated password, kubectl's last-applied configuration
// rewritten to match). Changes of other mutators are kept. It also returns
// the Warn findings that tell the user what stayed as it was, where, why
// and how to do it by hand; reason says why the Secret could not be written
// and must hold no secret value. m is not modified; a request m does not
// hold leaves it unchanged. The findings are those of the requesting rule's
// SecretNotWritten, one per change it describes; when it describes none,
// one finding where the Secret is first relied on.
func (e *Engine) WithoutSecret(m *Mutation, sr *credentials.SecretRequest, reason string) (*Mutation, Findings) {
	rule := ""
	out := &Mutation{warnings: m.warnings}
	for _, s := range m.secrets {
		if s == sr {
			rule = s.Rule
			continue
		}
		out.secrets = append(out.secrets, s)
	}
	if rule == "" || len(m.patch) != len(m.changes) {
		return m, nil
	}
	var dropped []Change
	for i, c := range m.changes {
		if c.Rule == rule {
			dropped = append(dropped, c)
			continue
		}
		out.changes = append(out.changes, c)
		out.patch = append(out.patch, m.patch[i])
	}
	var fs Findings
	if r := e.byID[rule]; r != nil && r.SecretNotWritten != nil {
		for _, c := range dropped {
			if err := r.SecretNotWritten(sr, c, reason); err != nil {
				fs = append(fs, Finding{Rule: rule, Action: Warn, Error: tagged(err, rule)})
			}
		}
	}
	if len(fs) == 0 {
		fs = Findings{{Rule: rule, Action: Warn, Error: tagged(&field.Error{Type: field.ErrorTypeInternal, Field: sr.Field.String(), Detail: fmt.Sprintf(
			"stsguard could not write Secret %q (%s), so it left the object as it was", sr.Name, reason)}, rule)}}
	}
	fs.sort()
	return out, fs
}
