// Package secretdata is what stsguard keeps of a stored Secret's values:
// for each key, a marker and two keyed digests instead of the value. Trim
// turns a Secret into that form; the informer cache and the live reads of
// the webhook (package server) and the world of stsguard audit (package
// audit) hold Secrets only in that form, so that a rule decides the same
// way in both and a heap dump of stsguard holds no Secret value. Equal and
// EqualFoldAny answer the questions the rules ask of a stored value (does
// the key hold this literal; is it empty or a well-known default password)
// for a trimmed value as for a value, key by key, so a Secret may hold both
// (the planned Secret of a mutation: the cached one with new keys added).
package secretdata
