// Package audit replays manifests, and judges live objects, through
// engine.Admit, the pipeline the webhook runs, and reports what stsguard
// would deny, warn about, record for audit and change: `stsguard audit`
// without its flags. Run audits a Source; Write prints the Report.
//
// Manifests are replayed as `kubectl apply -f` sends them: one object at a
// time, in order, each admitted (or denied) by the mutating then the
// validating webhook in the world the earlier objects left, which is what
// the webhooks' decisions depend on (a Service created before the
// StatefulSet that names it keeps its cluster IP; one created after is made
// headless). Live objects are judged each as its CREATE would be among all
// of them (Live).
package audit
