// Package podrefs walks a pod spec for the objects it references by name.
// It is the one definition of a pod template's Secret references, shared by
// the checks of package rules (which report them with their field paths) and
// by the webhook's informer cache index of StatefulSets by the Secrets they
// reference (package lookup and the server).
package podrefs
