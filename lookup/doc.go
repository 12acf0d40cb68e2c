// Package lookup implements engine.Lookup, the read-only view of the objects
// that rules reference, over controller-runtime readers: the informer cache
// of the webhook server (Reader), with a bounded live read (Live) of a
// Service or Secret the cache may not have caught up with, and the Secret
// index that answers which StatefulSets reference a Secret (IndexSecrets).
// Audit's Lookup is its own replay of the manifests (package audit);
// tests use internal/lookuptest.
package lookup
