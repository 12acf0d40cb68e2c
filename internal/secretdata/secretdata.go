package secretdata

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
)

// Annotation marks a Secret whose data values Trim replaced by digests. Its
// value identifies the digest key of this process, so that an annotation a
// user writes on a Secret is never taken for Trim's: Trim digests such a
// Secret's values like any other's.
const Annotation = "secretdata.stsguard.io/digests"

// digestLen is the length of each of a value's two digests: 16 bytes (128
// bits) of HMAC-SHA-256, so a trimmed value is 32 bytes whatever the size
// of the value.
const digestLen = 16

// Size is the length of a trimmed value: its exact digest, then its folded
// digest.
const Size = 2 * digestLen

// digestKey is this process's HMAC key, 32 random bytes drawn once, never
// written anywhere: a digest cannot be compared with one computed by
// another process, nor recomputed from a guess without this key.
var digestKey = sync.OnceValue(func() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // crypto/rand.Read never returns an error (Go >= 1.24)
	return k
})

// marker is the value of Annotation on the Secrets this process trimmed.
var marker = sync.OnceValue(func() string {
	return hex.EncodeToString(digest([]byte("secretdata marker"))[:8])
})

func digest(b []byte) []byte {
	m := hmac.New(sha256.New, digestKey())
	m.Write(b)
	return m.Sum(nil)[:digestLen]
}

// fold returns s without surrounding white space, each rune replaced by the
// smallest rune of its Unicode simple case folding orbit: two strings are
// strings.EqualFold after strings.TrimSpace exactly when their folds are
// equal (invalid UTF-8 decodes to utf8.RuneError, as in EqualFold).
func fold(s string) []byte {
	s = strings.TrimSpace(s)
	out := make([]byte, 0, len(s))
	for _, r := range s {
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		out = utf8.AppendRune(out, min)
	}
	return out
}

// trimmedValue is what Trim keeps of value: its exact digest, then the
// digest of its fold.
func trimmedValue(value []byte) []byte {
	return append(digest(value), digest(fold(string(value)))...)
}

// Trimmed reports whether s is a Secret Trim trimmed in this process.
func Trimmed(s *corev1.Secret) bool {
	return s != nil && s.Annotations[Annotation] == marker()
}

// Trim replaces, in place, each value of s.Data by Size bytes of keyed
// digests (the value's own and that of its case fold without surrounding
// white space), keeps the key names, digests the values of StringData
// (which the API never returns, but a manifest may hold) into Data as the
// apiserver would merge them, drops kubectl's last-applied configuration
// annotation (a copy of the values), and marks s with Annotation. It is
// idempotent, as a client-go TransformFunc must be.
func Trim(s *corev1.Secret) {
	if s == nil || Trimmed(s) {
		return
	}
	data := make(map[string][]byte, len(s.Data)+len(s.StringData))
	for k, v := range s.Data {
		data[k] = trimmedValue(v)
	}
	for k, v := range s.StringData {
		data[k] = trimmedValue([]byte(v))
	}
	s.Data, s.StringData = data, nil
	if len(data) == 0 {
		s.Data = nil
	}
	a := make(map[string]string, len(s.Annotations)+1)
	for k, v := range s.Annotations {
		if k != corev1.LastAppliedConfigAnnotation { // kubectl's copy of the values
			a[k] = v
		}
	}
	a[Annotation] = marker()
	s.Annotations = a
}

// Set puts value under key in s: its digests when s is trimmed, the value
// itself otherwise.
func Set(s *corev1.Secret, key string, value []byte) {
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	if Trimmed(s) {
		s.Data[key] = trimmedValue(value)
		return
	}
	s.Data[key] = value
}

// Equal reports whether s holds exactly value under key.
func Equal(s *corev1.Secret, key string, value []byte) bool {
	have, ok := s.Data[key]
	if !ok {
		return false
	}
	if Trimmed(s) {
		return len(have) == Size && hmac.Equal(have[:digestLen], digest(value))
	}
	return bytes.Equal(have, value)
}

// EqualFoldAny reports whether the value of s under key, without
// surrounding white space, equals one of candidates (also trimmed) under
// Unicode case folding (strings.EqualFold). It is false when s has no key.
func EqualFoldAny(s *corev1.Secret, key string, candidates ...string) bool {
	have, ok := s.Data[key]
	if !ok {
		return false
	}
	if !Trimmed(s) {
		v := strings.TrimSpace(string(have))
		for _, c := range candidates {
			if strings.EqualFold(v, strings.TrimSpace(c)) {
				return true
			}
		}
		return false
	}
	if len(have) != Size {
		return false
	}
	for _, c := range candidates {
		if hmac.Equal(have[digestLen:], digest(fold(c))) {
			return true
		}
	}
	return false
}
