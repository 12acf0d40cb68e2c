// Package lookup implements engine.Lookup, the read-only view of the objects
// that rules reference: over an in-memory set of objects (manifests, tests)
// and over controller-runtime readers (the informer cache of the webhook
// server, with a bounded live read, Live, when the cache may not have
// caught up).
package lookup
