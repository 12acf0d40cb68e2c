package engine

import (
	"regexp"
	"strings"
)

// matchName reports whether re matches name. When re is the compiled
// pattern (a Default…Pattern) and name is ASCII, it asks match instead: a
// string test with the same answers as pattern on ASCII names: the
// regexps backtrack from every start position, and IsPasswordName of the
// seed Cassandra StatefulSet's two env names cost about 200,000
// instructions through them, under 1,000 through the string tests. A
// policy's own pattern, or a name with a byte outside ASCII (where (?i)
// also folds ſ to s and the Kelvin sign to k), goes to re.
// FuzzDefaultNamePatterns holds the string tests to the patterns.
func matchName(re *regexp.Regexp, pattern string, match func(string) bool, name string) bool {
	if re.String() == pattern && isASCII(name) {
		return match(name)
	}
	return re.MatchString(name)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// cutSuffixFold is strings.CutSuffix ignoring ASCII case; suffix is lower
// case ASCII.
func cutSuffixFold(s, suffix string) (string, bool) {
	if len(s) < len(suffix) || !strings.EqualFold(s[len(s)-len(suffix):], suffix) {
		return s, false
	}
	return s[:len(s)-len(suffix)], true
}

func hasSuffixFold(s, suffix string) bool {
	_, ok := cutSuffixFold(s, suffix)
	return ok
}

// credentialEnvSuffixes are the alternatives of DefaultCredentialEnvPattern,
// which is anchored at the end only: a name matches when it ends in one.
var credentialEnvSuffixes = []string{
	"password", "passwd", "passphrase", "_pass", "_pwd", "secret", "token",
	"secret_key", "access_key", "private_key", "api_key", "apikey", "encryption_key",
	"signing_key", "master_key", "secret_key_base", "credential", "credentials",
}

// isDefaultCredentialEnv is DefaultCredentialEnvPattern on an ASCII name.
func isDefaultCredentialEnv(name string) bool {
	for _, s := range credentialEnvSuffixes {
		if hasSuffixFold(name, s) {
			return true
		}
	}
	return false
}

// switchWords are the words of DefaultCredentialSwitchPattern's
// (^|_)(…)_ alternative. ALLOW_EMPTY is not among them: a name with
// ALLOW_EMPTY_ in that place has ALLOW_ there.
var switchWords = []string{"allow", "random", "onetime", "generate", "skip", "disable", "enable", "require", "use"}

// isDefaultCredentialSwitch is DefaultCredentialSwitchPattern on an ASCII
// name.
func isDefaultCredentialSwitch(name string) bool {
	if strings.EqualFold(name, "google_application_credentials") ||
		hasSuffixFold(name, "keystore_credentials") ||
		hasSuffixFold(name, "truststore_credentials") ||
		hasSuffixFold(name, "ssl_key_credentials") {
		return true
	}
	// (^|_)WORD_: a word that starts the name or follows an underscore,
	// and is followed by one.
	for rest := name; ; {
		i := strings.IndexByte(rest, '_')
		if i < 0 {
			return false
		}
		for _, w := range switchWords {
			if strings.EqualFold(rest[:i], w) {
				return true
			}
		}
		rest = rest[i+1:]
	}
}

// isDefaultPasswordName is DefaultPasswordNamePattern on an ASCII name.
func isDefaultPasswordName(name string) bool {
	if hasSuffixFold(name, "passwd") || hasSuffixFold(name, "password") || hasSuffixFold(name, "passphrase") {
		return true
	}
	// (^|[_.-])(pass|pwd)
	for _, s := range []string{"pass", "pwd"} {
		if rest, ok := cutSuffixFold(name, s); ok && (rest == "" || isNameSeparator(rest[len(rest)-1])) {
			return true
		}
	}
	// secret[_.-]?key and secret[_.-]?access[_.-]?key. A separator before
	// "key" or "access" can only be the optional one: "secret" and
	// "access" end in a letter.
	rest, ok := cutSuffixFold(name, "key")
	if !ok {
		return false
	}
	rest = trimNameSeparator(rest)
	if hasSuffixFold(rest, "secret") {
		return true
	}
	rest, ok = cutSuffixFold(rest, "access")
	return ok && hasSuffixFold(trimNameSeparator(rest), "secret")
}

// isNameSeparator reports whether c is one of DefaultPasswordNamePattern's
// separators, [_.-].
func isNameSeparator(c byte) bool { return c == '_' || c == '.' || c == '-' }

// trimNameSeparator removes one trailing separator of s, if any.
func trimNameSeparator(s string) string {
	if s != "" && isNameSeparator(s[len(s)-1]) {
		return s[:len(s)-1]
	}
	return s
}
