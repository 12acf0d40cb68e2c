package engine

import (
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RecreateAnnotation marks an object created to replace one of the same name
// whose dependents still run: `stsguard expand` deletes a StatefulSet with
// propagationPolicy Orphan and creates it again with a larger
// volumeClaimTemplate, and the StatefulSet controller re-adopts the running
// pods. Its value is the UID of the object replaced.
//
// On the CREATE of such an object the mutators that fill in defaults for a
// new object (Rule.Default: termination-grace-period, rollout-partition)
// step aside, each recorded as an exemption (By "recreate"): the pods run
// the template as stored, and a default applied to it now (a StatefulSet
// admitted before stsguard was installed keeps the API default
// terminationGracePeriodSeconds of 30) would be a new pod template, a new
// revision, and a rolling restart of every pod. password-secret-ref
// generates no password either (the data has one), and warns as on an
// UPDATE. Nothing else changes: every validation rule runs as on any
// CREATE, and password-secret-ref still moves a literal password (expand's
// dry run sees that change and refuses before it deletes anything). The
// annotation skips nothing that the exemption annotation (stsguard.io/exempt)
// could not skip with a reason; expand removes it once the StatefulSet is
// created.
const RecreateAnnotation = "stsguard.io/recreate-of"

// recreateExemption is the exemption a default mutator steps aside under
// on the CREATE of a re-created object: it is logged and counted as any
// exemption is (By "recreate"), so that the annotation leaves a trace.
func recreateExemption(rule string, obj metav1.Object) Exemption {
	return Exemption{Rule: rule, By: "recreate", Reason: RecreateAnnotation + "=" + obj.GetAnnotations()[RecreateAnnotation]}
}

// IsRecreate reports whether in is the CREATE of an object that carries
// RecreateAnnotation.
func IsRecreate[T Object](in *Input[T]) bool {
	return in.Operation == admissionv1.Create && in.Object.GetAnnotations()[RecreateAnnotation] != ""
}
