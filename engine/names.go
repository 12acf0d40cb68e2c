package engine

import (
	"regexp"
	"strings"

	"k8s.io/utils/lru"
)

// nameMatchCacheSize bounds how many (pattern, name) answers matchName
// remembers: a cluster's StatefulSets use a few hundred env var names and
// Secret keys, each asked of three patterns.
const nameMatchCacheSize = 4096

// maxCachedNameLength is the longest name matchName remembers, in bytes:
// a Secret key is at most 253; a longer env var name is asked of the
// regexp every time rather than held in memory.
const maxCachedNameLength = 253

// nameMatches remembers re.MatchString(name) by (re, name): the same env
// var names and Secret keys come in every review, and the name patterns,
// unanchored at the start with many alternatives, cost Go's regexp about
// 100,000 instructions per name (the seed Cassandra StatefulSet's two env
// names were 200,000 of a validating review's 736,000). A *regexp.Regexp
// is immutable, so an answer stays true for as long as its key can be
// asked; a policy reload compiles new patterns, whose answers are new keys,
// and the old ones age out of the LRU. Safe for concurrent use.
var nameMatches = lru.New(nameMatchCacheSize)

type nameMatchKey struct {
	re   *regexp.Regexp
	name string
}

// matchName reports whether re matches name, as re.MatchString does,
// remembering the answer for names up to maxCachedNameLength bytes.
func matchName(re *regexp.Regexp, name string) bool {
	if len(name) > maxCachedNameLength {
		return re.MatchString(name)
	}
	k := nameMatchKey{re, name}
	if v, ok := nameMatches.Get(k); ok {
		return v.(bool)
	}
	m := re.MatchString(name)
	// A copy, so that the key keeps no larger string (a decoded object's
	// buffer) alive.
	nameMatches.Add(nameMatchKey{re, strings.Clone(name)}, m)
	return m
}
