package harness

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRuleIDs(t *testing.T) {
	for _, tc := range []struct {
		name string
		msgs []string
		want []string
	}{
		{"none", nil, nil},
		{"no tag", []string{"admitted"}, nil},
		{"one", []string{`spec.serviceName: Not found: "web" [rule: headless-service-missing]`}, []string{"headless-service-missing"}},
		{"sorted, each once", []string{"a [rule: weak-password] b [rule: image-latest]", "c [rule: weak-password]"}, []string{"image-latest", "weak-password"}},
		{"not a tag", []string{"[rule: Upper]", "[rules: x]"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, RuleIDs(tc.msgs...))
		})
	}
}
