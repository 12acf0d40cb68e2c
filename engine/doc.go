// Package engine is stsguard's admission pipeline: the one place that turns
// an admission request into a decision, for the webhook, the audit replay
// and, through the webhook, expand's pre-flight.
//
// A Request (a kind, an operation, the typed objects, the Phase a caller
// stands for) goes through Admit: the mutators run on a private copy, then
// the checks judge the object as it would be stored, in the world the
// mutation would leave (its Secrets written), under the policy's actions,
// exemptions and ratcheting. The Decision holds the findings (field.Errors
// tagged with their rule ID and action), the exemptions used, and the
// Mutation: a JSON patch (RFC 6902), the changes described for people, and
// the Secret writes it relies on. Admit performs no write: side effects stay
// at the edge (the webhook executes the writes under a deadline; audit
// records them).
//
// The engine holds no rule of its own but exemption-invalid, whose check is
// its reading of the exemption annotations: package rules declares the
// built-in rules as Rule values, and New takes them as its registry. Package
// kinds is the one table of the kinds stsguard reads; package credentials,
// what the rules know about database images and credentials. Lookup is the
// read-only view of the referenced objects that checks consult.
package engine
