package policy

import "testing"

// FuzzParse reads arbitrary policy files: each gives a config or an error,
// never a panic.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"apiVersion: config.stsguard.io/v1alpha1\nkind: Policy\n",
		"apiVersion: config.stsguard.io/v1alpha1\nkind: Policy\nrules:\n  weak-password: Warn\nmutations:\n  rollout-partition: Off\n",
		"apiVersion: config.stsguard.io/v1alpha1\nkind: Policy\nexemptions:\n- namespaceSelector: {matchLabels: {a: b}}\n  rules: [weak-password]\n",
		"kind: Policy\npasswordNamePattern: '('\n",
		"{}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = Parse(data)
	})
}
