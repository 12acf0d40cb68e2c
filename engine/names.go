package engine

import (
	"regexp"
	"strings"

	"k8s.io/utils/lru"
)

// nameMemoSize bounds how many (pattern, name) answers a nameMemo
// remembers: a cluster's StatefulSets use a few hundred env var names and
// Secret keys, each asked of three patterns.
const nameMemoSize = 4096

// maxMemoNameLength is the longest name a nameMemo remembers, in bytes: a
// Secret key is at most 253; a longer env var name is asked of the regexp
// every time rather than held in memory.
const maxMemoNameLength = 253

// nameMemo remembers re.MatchString(name) by (re, name) for one engine's
// name patterns (Config's CredentialEnv, CredentialSwitch and
// PasswordName), up to nameMemoSize answers, least recently used first
// out. The same env var names and Secret keys come in every review, and
// the patterns, unanchored at the start with many alternatives, cost Go's
// regexp 5 to 12 µs per name. A *regexp.Regexp is immutable, so an answer
// stays true for as long as its key can be asked; New gives each engine a
// memo of its own, so a policy reload (a new engine) starts an empty one
// and the old one goes with the old engine. Safe for concurrent use.
type nameMemo struct {
	answers *lru.Cache
}

type nameMemoKey struct {
	re   *regexp.Regexp
	name string
}

func newNameMemo() *nameMemo {
	return &nameMemo{answers: lru.New(nameMemoSize)}
}

// match reports whether re matches name, as re.MatchString does,
// remembering the answer for names up to maxMemoNameLength bytes. A nil
// memo (a Config outside an engine) asks re every time.
func (m *nameMemo) match(re *regexp.Regexp, name string) bool {
	if m == nil || len(name) > maxMemoNameLength {
		return re.MatchString(name)
	}
	k := nameMemoKey{re, name}
	if v, ok := m.answers.Get(k); ok {
		return v.(bool)
	}
	ok := re.MatchString(name)
	// A copy, so that the key keeps no larger string (a decoded object's
	// buffer) alive.
	m.answers.Add(nameMemoKey{re, strings.Clone(name)}, ok)
	return ok
}
