package credentials

import (
	"regexp"
	"strings"

	"k8s.io/utils/lru"
)

// nameMatchCacheSize bounds how many (pattern, name) answers a nameMemo
// remembers: a cluster's StatefulSets use a few hundred env var names and
// Secret keys, each asked of three patterns.
const nameMatchCacheSize = 4096

// maxCachedNameLength is the longest name a nameMemo remembers, in bytes:
// a Secret key is at most 253; a longer env var name is asked of the
// regexp every time rather than held in memory.
const maxCachedNameLength = 253

// nameMemo remembers re.MatchString(name) by (re, name): the same env var
// names and Secret keys come in every review, and the name patterns,
// unanchored at the start with many alternatives, cost Go's regexp about
// 100,000 instructions per name (the seed Cassandra StatefulSet's two env
// names were 200,000 of a validating review's 736,000). A *regexp.Regexp
// is immutable, so an answer stays true for as long as its key can be
// asked; a policy that swaps a pattern in a copy of a Config asks with new
// keys, and the old answers age out of the LRU. Safe for concurrent use. A
// nil *nameMemo remembers nothing.
type nameMemo struct{ answers *lru.Cache }

type nameMatchKey struct {
	re   *regexp.Regexp
	name string
}

func newNameMemo() *nameMemo { return &nameMemo{answers: lru.New(nameMatchCacheSize)} }

// match reports whether re matches name, as re.MatchString does,
// remembering the answer for names up to maxCachedNameLength bytes.
func (m *nameMemo) match(re *regexp.Regexp, name string) bool {
	if m == nil || len(name) > maxCachedNameLength {
		return re.MatchString(name)
	}
	k := nameMatchKey{re, name}
	if v, ok := m.answers.Get(k); ok {
		return v.(bool)
	}
	matched := re.MatchString(name)
	// A copy, so that the key keeps no larger string (a decoded object's
	// buffer) alive.
	m.answers.Add(nameMatchKey{re, strings.Clone(name)}, matched)
	return matched
}
