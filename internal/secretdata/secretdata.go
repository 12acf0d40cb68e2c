package secretdata

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
)

// Lengths of a trimmed value: a marker that tells it from a value (the same
// for every value trimmed by this process), then the value's own digest,
// then the digest of its case fold without surrounding white space. Each
// digest is 16 bytes (128 bits) of HMAC-SHA-256.
const (
	markerLen = 8
	digestLen = 16
	// Size is the length of a trimmed value, whatever the length of the
	// value: 40 bytes.
	Size = markerLen + 2*digestLen
)

// digestKey is this process's HMAC key, 32 random bytes drawn once and
// never written anywhere: a digest cannot be compared with one computed by
// another process, nor recomputed from a guess without this key.
var digestKey = sync.OnceValue(func() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // crypto/rand.Read never returns an error (Go >= 1.24)
	return k
})

// marker starts every value this process trimmed. It derives from
// digestKey, so a value written into a Secret cannot pass for a trimmed
// one.
var marker = sync.OnceValue(func() []byte {
	return digest([]byte("secretdata marker"))[:markerLen]
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
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		out = utf8.AppendRune(out, least)
	}
	return out
}

// trimmed reports whether v is a value this process trimmed.
func trimmed(v []byte) bool {
	return len(v) == Size && bytes.Equal(v[:markerLen], marker())
}

// trim returns what Trim keeps of value.
func trim(value []byte) []byte {
	out := make([]byte, 0, Size)
	out = append(out, marker()...)
	out = append(out, digest(value)...)
	return append(out, digest(fold(string(value)))...)
}

// Trimmed reports whether s holds no value: every value of its data is
// trimmed (a Secret without data holds none either).
func Trimmed(s *corev1.Secret) bool {
	for _, v := range s.Data {
		if !trimmed(v) {
			return false
		}
	}
	return len(s.StringData) == 0
}

// Trim replaces, in place, each value of s.Data by Size bytes: a marker and
// two keyed digests (of the value, and of its case fold without surrounding
// white space). It keeps the key names, trims the values of StringData
// (which the API never returns, but a manifest may hold) into Data as the
// apiserver would merge them, and drops kubectl's last-applied
// configuration annotation, which is a copy of the values. It is
// idempotent, as a client-go TransformFunc must be: a value already
// trimmed stays as it is.
func Trim(s *corev1.Secret) {
	if s == nil {
		return
	}
	for k, v := range s.Data {
		if !trimmed(v) {
			s.Data[k] = trim(v)
		}
	}
	if len(s.StringData) > 0 {
		if s.Data == nil {
			s.Data = make(map[string][]byte, len(s.StringData))
		}
		for k, v := range s.StringData {
			s.Data[k] = trim([]byte(v))
		}
		s.StringData = nil
	}
	if _, ok := s.Annotations[corev1.LastAppliedConfigAnnotation]; ok {
		a := make(map[string]string, len(s.Annotations)-1)
		for k, v := range s.Annotations {
			if k != corev1.LastAppliedConfigAnnotation {
				a[k] = v
			}
		}
		s.Annotations = a
	}
}

// Equal reports whether s holds exactly value under key, whether s holds
// that key's value or Trim trimmed it.
func Equal(s *corev1.Secret, key string, value []byte) bool {
	have, ok := s.Data[key]
	switch {
	case !ok:
		return false
	case trimmed(have):
		return hmac.Equal(have[markerLen:markerLen+digestLen], digest(value))
	default:
		return bytes.Equal(have, value)
	}
}

// EqualFoldAny reports whether the value of s under key, without
// surrounding white space, equals one of candidates (also trimmed) under
// Unicode case folding (strings.EqualFold), whether s holds that key's
// value or Trim trimmed it. It is false when s has no key.
func EqualFoldAny(s *corev1.Secret, key string, candidates ...string) bool {
	have, ok := s.Data[key]
	if !ok {
		return false
	}
	if !trimmed(have) {
		v := strings.TrimSpace(string(have))
		for _, c := range candidates {
			if strings.EqualFold(v, strings.TrimSpace(c)) {
				return true
			}
		}
		return false
	}
	for _, c := range candidates {
		if hmac.Equal(have[markerLen+digestLen:], digest(fold(c))) {
			return true
		}
	}
	return false
}

// SameData reports whether a and b hold the same keys with the same values,
// each side holding values or trimmed values: what an UPDATE changes of a
// Secret's data. A value and a trimmed value are the same when Equal says
// so.
func SameData(a, b *corev1.Secret) bool {
	if len(a.Data) != len(b.Data) {
		return false
	}
	for k, va := range a.Data {
		vb, ok := b.Data[k]
		switch {
		case !ok:
			return false
		case trimmed(va) == trimmed(vb):
			if !bytes.Equal(va, vb) {
				return false
			}
		case trimmed(va):
			if !Equal(a, k, vb) {
				return false
			}
		default:
			if !Equal(b, k, va) {
				return false
			}
		}
	}
	return true
}
