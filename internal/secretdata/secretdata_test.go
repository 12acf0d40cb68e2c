package secretdata

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func secret(data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s"}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func TestTrimKeepsKeysNotValues(t *testing.T) {
	values := map[string]string{
		"password": "s3cr3t-" + strings.Repeat("x", 4096),
		"empty":    "",
		"short":    "pw-Z9", // long enough not to occur by chance in a 40-byte digest
	}
	s := secret(values)
	s.StringData = map[string]string{"from-string-data": "another-value"}
	s.Annotations = map[string]string{corev1.LastAppliedConfigAnnotation: `{"data":{"password":"czNjcjN0"}}`, "keep": "me"}
	Trim(s)
	assert.NotContains(t, s.Annotations, corev1.LastAppliedConfigAnnotation)
	assert.Equal(t, map[string]string{"keep": "me"}, s.Annotations)
	require.True(t, Trimmed(s))
	assert.ElementsMatch(t, []string{"password", "empty", "short", "from-string-data"}, keys(s))
	assert.Nil(t, s.StringData)
	for k, v := range s.Data {
		assert.Len(t, v, Size, k)
		for _, orig := range append([]string{"another-value"}, values["password"], values["short"]) {
			assert.False(t, bytes.Contains(v, []byte(orig)), "key %s holds a value", k)
		}
	}
	before := s.DeepCopy()
	Trim(s)
	assert.Equal(t, before, s, "Trim is idempotent")
}

// TestAValueCannotPassForTrimmed: a value of Size bytes that is not this
// process's trimmed value is trimmed, and read as a value.
func TestAValueCannotPassForTrimmed(t *testing.T) {
	forged := bytes.Repeat([]byte{'a'}, Size)
	s := secret(map[string]string{"password": string(forged)})
	require.False(t, Trimmed(s))
	assert.True(t, Equal(s, "password", forged))
	Trim(s)
	assert.True(t, Trimmed(s))
	assert.NotEqual(t, forged, s.Data["password"])
	assert.True(t, Equal(s, "password", forged))
}

// TestMixed: a trimmed Secret with a value added (the planned Secret of a
// mutation) answers for each key.
func TestMixed(t *testing.T) {
	s := secret(map[string]string{"a": "1"})
	Trim(s)
	s.Data["b"] = []byte("2")
	assert.False(t, Trimmed(s))
	assert.True(t, Equal(s, "a", []byte("1")))
	assert.True(t, Equal(s, "b", []byte("2")))
	assert.False(t, Equal(s, "b", []byte("1")))
	Trim(s)
	assert.True(t, Trimmed(s))
	assert.True(t, Equal(s, "b", []byte("2")))
}

// TestAnswersAreTheSameTrimmedOrNot compares each answer on a Secret that
// holds its values with the answer on its trimmed copy, and EqualFoldAny
// with strings.EqualFold after strings.TrimSpace.
func TestAnswersAreTheSameTrimmedOrNot(t *testing.T) {
	candidates := []string{"", "password", "changeme", "Kelvin", "straße", "  root \n", "ǅ", "\xff"}
	values := []string{
		"", " ", "\n\t", "password", "PASSWORD", "Password\n", " passw0rd", "changeme", "CHANGEME ",
		"kelvin", "\u212aelvin", // KELVIN SIGN folds with k
		"STRASSE", "straſe", "STRAßE", // long s folds with s; ß does not fold to ss
		"root", "ǆ", "Ǆ", "\xfe", "strong-generated-password",
	}
	for _, v := range values {
		for _, c := range candidates {
			t.Run(v+"/"+c, func(t *testing.T) {
				full := secret(map[string]string{"k": v})
				trimmed := full.DeepCopy()
				Trim(trimmed)
				want := strings.EqualFold(strings.TrimSpace(v), strings.TrimSpace(c))
				assert.Equal(t, want, EqualFoldAny(full, "k", c), "full")
				assert.Equal(t, want, EqualFoldAny(trimmed, "k", c), "trimmed")
				assert.Equal(t, v == c, Equal(full, "k", []byte(c)), "Equal full")
				assert.Equal(t, v == c, Equal(trimmed, "k", []byte(c)), "Equal trimmed")
			})
		}
	}
}

func TestMissingKey(t *testing.T) {
	for _, trim := range []bool{false, true} {
		s := secret(map[string]string{"a": ""})
		if trim {
			Trim(s)
		}
		assert.False(t, Equal(s, "b", nil))
		assert.False(t, EqualFoldAny(s, "b", ""))
		assert.True(t, Equal(s, "a", nil))
		assert.True(t, EqualFoldAny(s, "a", ""))
	}
}

func keys(s *corev1.Secret) []string {
	var out []string
	for k := range s.Data {
		out = append(out, k)
	}
	return out
}

func TestSameData(t *testing.T) {
	trimmedCopy := func(s *corev1.Secret) *corev1.Secret {
		s = s.DeepCopy()
		Trim(s)
		return s
	}
	for _, tc := range []struct {
		name string
		a, b map[string]string
		want bool
	}{
		{"same", map[string]string{"a": "1", "b": "2"}, map[string]string{"a": "1", "b": "2"}, true},
		{"both empty", nil, map[string]string{}, true},
		{"a value differs", map[string]string{"a": "1"}, map[string]string{"a": "2"}, false},
		{"a key more", map[string]string{"a": "1"}, map[string]string{"a": "1", "b": "2"}, false},
		{"another key", map[string]string{"a": "1"}, map[string]string{"b": "1"}, false},
	} {
		a, b := secret(tc.a), secret(tc.b)
		for _, pair := range [][2]*corev1.Secret{{a, b}, {trimmedCopy(a), b}, {a, trimmedCopy(b)}, {trimmedCopy(a), trimmedCopy(b)}} {
			assert.Equal(t, tc.want, SameData(pair[0], pair[1]), "%s: trimmed %t, %t", tc.name, Trimmed(pair[0]), Trimmed(pair[1]))
		}
	}
}
