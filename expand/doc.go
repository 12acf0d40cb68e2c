// Package expand grows a volumeClaimTemplate of a running StatefulSet the
// only way Kubernetes allows: resize each PVC, then delete the StatefulSet
// with propagationPolicy Orphan (pods and PVCs stay) and create it again
// with the larger template, so that new ordinals get the new size. The
// StatefulSet controller re-adopts the pods; none is restarted: the
// re-created StatefulSet carries engine.RecreateAnnotation (removed once it
// is created), so stsguard's defaults for new StatefulSets leave its pod
// template alone; expand refuses, before it changes anything, when its
// server-side dry run shows that stsguard would change the StatefulSet all
// the same, and returns an error when the create changed the pod template
// anyway (another mutating webhook that does not say what it changes).
//
// Every step can be repeated: a run that stops anywhere (a timeout, a lost
// connection, Ctrl-C) completes when run again. Before it deletes the
// StatefulSet it saves the object it will create in a Secret
// (stsguard-expand-<name>), so a run that stops between the delete and the
// create finds it there.
package expand
