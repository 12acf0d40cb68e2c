// Package resize plans growing one volumeClaimTemplate of a StatefulSet:
// every PVC the StatefulSet controller made (or will make) from it, its
// size and StorageClass, and what stands in the way (a claim not Bound, a
// StorageClass without allowVolumeExpansion, a claim larger already). The
// storage rules print the plan in their findings; `stsguard expand` carries
// it out. volumeClaimTemplates are immutable and existing PVCs never follow
// a template, so a resize is a change of each PVC and a re-create of the
// StatefulSet with its pods orphaned
// (https://kubernetes.io/docs/concepts/storage/persistent-volumes/#expanding-persistent-volumes-claims).
package resize

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/stsguard/stsguard/engine"
)

// ClaimName returns the name of the PVC the StatefulSet controller creates
// from volumeClaimTemplate template for the pod of ordinal:
// "<template>-<statefulset>-<ordinal>", as getPersistentVolumeClaimName in
// kubernetes pkg/controller/statefulset/stateful_set_utils.go names it.
func ClaimName(template, statefulSet string, ordinal int) string {
	return template + "-" + statefulSet + "-" + strconv.Itoa(ordinal)
}

// ClaimOrdinal returns the ordinal of a PVC named ClaimName(template,
// statefulSet, n), or false when name is not such a name.
func ClaimOrdinal(name, template, statefulSet string) (int, bool) {
	rest, ok := strings.CutPrefix(name, template+"-"+statefulSet+"-")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 || strconv.Itoa(n) != rest {
		return 0, false
	}
	return n, true
}

// StorageRequest returns spec.resources.requests.storage of a PVC or
// volumeClaimTemplate, and whether it is set.
func StorageRequest(pvc *corev1.PersistentVolumeClaim) (resource.Quantity, bool) {
	q, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	return q, ok
}

// TemplateIndex returns the index of the volumeClaimTemplate named name in
// sts, or -1.
func TemplateIndex(sts *appsv1.StatefulSet, name string) int {
	for i := range sts.Spec.VolumeClaimTemplates {
		if sts.Spec.VolumeClaimTemplates[i].Name == name {
			return i
		}
	}
	return -1
}

// Claim is one PVC of a volumeClaimTemplate in a Plan.
type Claim struct {
	// Name is "<template>-<statefulset>-<ordinal>".
	Name string
	// Ordinal is the ordinal of the pod that uses the claim.
	Ordinal int
	// PVC is the existing claim; nil when it does not exist yet (the
	// StatefulSet controller creates it from the template, at the template's
	// size, when the pod of Ordinal first starts).
	PVC *corev1.PersistentVolumeClaim
	// Request is spec.resources.requests.storage of PVC (zero when PVC is nil).
	Request resource.Quantity
	// Capacity is status.capacity.storage of PVC, the size the volume has
	// now (zero when unknown).
	Capacity resource.Quantity
	// StorageClass is the claim's StorageClass name ("" for none).
	StorageClass string
	// Expandable is true when that StorageClass exists and sets
	// allowVolumeExpansion: true.
	Expandable bool
	// Leftover is true for an existing claim of an ordinal outside
	// [start, start+replicas): kept by a scale-down, reused by a scale-up.
	Leftover bool
	// Problem says why the claim cannot be resized to the plan's size; ""
	// when it can (or needs nothing).
	Problem string
}

// NeedsResize reports whether the claim exists and requests less than size.
func (c *Claim) NeedsResize(size resource.Quantity) bool {
	return c.PVC != nil && c.Request.Cmp(size) < 0
}

// Resized reports whether the claim's volume has reached size: its
// status.capacity is at least size, or the volume is resized and only the
// file system waits for the pod to restart (condition
// FileSystemResizePending).
func Resized(pvc *corev1.PersistentVolumeClaim, size resource.Quantity) bool {
	if c, ok := pvc.Status.Capacity[corev1.ResourceStorage]; ok && c.Cmp(size) >= 0 {
		return true
	}
	for _, cond := range pvc.Status.Conditions {
		if cond.Type == corev1.PersistentVolumeClaimFileSystemResizePending && cond.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// Plan is what growing one volumeClaimTemplate of a StatefulSet
// involves: every PVC of the template, its size and StorageClass, and what
// stands in the way. `stsguard expand` carries it out; the
// volume-claim-template-resize rule prints it.
type Plan struct {
	// Namespace and StatefulSet name the StatefulSet.
	Namespace, StatefulSet string
	// Template is the volumeClaimTemplate's name.
	Template string
	// From is the template's current storage request; To the requested size.
	From, To resource.Quantity
	// TemplateClass is the StorageClass new claims get ("" for none), and
	// TemplateExpandable whether it allows volume expansion.
	TemplateClass      string
	TemplateExpandable bool
	// Claims are the PVCs of ordinals start..start+replicas-1 (existing or
	// not; at most MaxClaimsNotCreated of those not created yet) and any
	// existing leftover of another ordinal, by ordinal.
	Claims []Claim
	// MoreNotCreated counts the ordinals not created yet beyond the first
	// MaxClaimsNotCreated, which Claims leaves out.
	MoreNotCreated int
}

// MaxClaimsNotCreated bounds the claims not created yet that a plan lists
// one by one: replicas is set by whoever writes the StatefulSet (up to 2^31
// - 1), and a plan of a claim per ordinal would cost stsguard memory and
// time in proportion (an UPDATE with a huge replicas count would make it run
// out of memory).
const MaxClaimsNotCreated = 10

// New plans growing volumeClaimTemplate template of sts to size,
// reading PVCs and StorageClasses through lk. It returns an error when the
// template does not exist or lk fails; problems of single claims (not
// Bound, a StorageClass that cannot expand, a request above size) are in
// Claim.Problem and Problems.
func New(ctx context.Context, sts *appsv1.StatefulSet, template string, size resource.Quantity, lk engine.Lookup) (*Plan, error) {
	i := TemplateIndex(sts, template)
	if i < 0 {
		names := make([]string, 0, len(sts.Spec.VolumeClaimTemplates))
		for _, t := range sts.Spec.VolumeClaimTemplates {
			names = append(names, fmt.Sprintf("%q", t.Name))
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("StatefulSet %s/%s has no volumeClaimTemplates", sts.Namespace, sts.Name)
		}
		return nil, fmt.Errorf("StatefulSet %s/%s has no volumeClaimTemplate %q; it has %s", sts.Namespace, sts.Name, template, strings.Join(names, ", "))
	}
	t := &sts.Spec.VolumeClaimTemplates[i]
	p := &Plan{Namespace: sts.Namespace, StatefulSet: sts.Name, Template: template, To: size}
	p.From, _ = StorageRequest(t)

	sc, ferr := TemplateClass(ctx, lk, t, field.NewPath("spec", "volumeClaimTemplates").Index(i).Child("spec", "storageClassName"))
	if ferr != nil && ferr.Type == field.ErrorTypeInternal {
		return nil, fmt.Errorf("%s", ferr.Detail)
	}
	if sc != nil {
		p.TemplateClass, p.TemplateExpandable = sc.Name, ptr.Deref(sc.AllowVolumeExpansion, false)
	} else if name, named := ClaimClass(t); named {
		p.TemplateClass = name
	}

	pvcs, err := lk.PersistentVolumeClaims(ctx, sts.Namespace)
	if err != nil {
		return nil, fmt.Errorf("listing the PVCs of namespace %s: %w", sts.Namespace, err)
	}
	byOrdinal := map[int]*corev1.PersistentVolumeClaim{}
	for _, pvc := range pvcs {
		if n, ok := ClaimOrdinal(pvc.Name, template, sts.Name); ok {
			byOrdinal[n] = pvc
		}
	}
	start := 0
	if sts.Spec.Ordinals != nil {
		start = int(sts.Spec.Ordinals.Start)
	}
	replicas := int(ptr.Deref(sts.Spec.Replicas, 1))
	end := start + max(replicas, 0)
	existing := 0 // existing claims of ordinals in start..end-1
	for n := range byOrdinal {
		if n >= start && n < end {
			existing++
		}
	}
	notCreated := end - start - existing
	for n := start; n < end && len(p.Claims) < min(notCreated, MaxClaimsNotCreated); n++ {
		if _, ok := byOrdinal[n]; !ok {
			p.Claims = append(p.Claims, Claim{Name: ClaimName(template, sts.Name, n), Ordinal: n,
				StorageClass: p.TemplateClass, Expandable: p.TemplateExpandable})
		}
	}
	p.MoreNotCreated = notCreated - len(p.Claims)
	classes := map[string]*storagev1.StorageClass{}
	for n, pvc := range byOrdinal {
		c, err := planClaim(ctx, pvc, size, lk, classes)
		if err != nil {
			return nil, err
		}
		c.Ordinal, c.Leftover = n, n < start || n >= end
		p.Claims = append(p.Claims, c)
	}
	sort.Slice(p.Claims, func(a, b int) bool { return p.Claims[a].Ordinal < p.Claims[b].Ordinal })
	return p, nil
}

func planClaim(ctx context.Context, pvc *corev1.PersistentVolumeClaim, size resource.Quantity, lk engine.Lookup, classes map[string]*storagev1.StorageClass) (Claim, error) {
	c := Claim{Name: pvc.Name, PVC: pvc}
	c.Request, _ = StorageRequest(pvc)
	c.Capacity = pvc.Status.Capacity[corev1.ResourceStorage]
	name, named := ClaimClass(pvc)
	c.StorageClass = name
	var classProblem string
	switch {
	case !named || name == "":
		classProblem = "it has no StorageClass (statically provisioned), and only a dynamically provisioned claim can be resized"
	default:
		sc, ok := classes[name]
		if !ok {
			var err error
			sc, err = lk.StorageClass(ctx, name)
			if err != nil && !apierrors.IsNotFound(err) {
				return c, fmt.Errorf("reading StorageClass %s: %w", name, err)
			}
			classes[name] = sc
		}
		switch {
		case sc == nil:
			classProblem = fmt.Sprintf("its StorageClass %q does not exist", name)
		case !ptr.Deref(sc.AllowVolumeExpansion, false):
			classProblem = fmt.Sprintf("its StorageClass %q does not set allowVolumeExpansion: true (an administrator can set it, if the storage driver supports expansion)", name)
		default:
			c.Expandable = true
		}
	}
	var problems []string
	switch cmp := c.Request.Cmp(size); {
	case cmp > 0:
		problems = append(problems, fmt.Sprintf("it requests %s already, more than %s, and a PVC can never shrink", c.Request.String(), size.String()))
	case cmp < 0: // the claim needs a resize
		if classProblem != "" {
			problems = append(problems, classProblem)
		}
		if pvc.Status.Phase != corev1.ClaimBound {
			phase := string(pvc.Status.Phase)
			if phase == "" {
				phase = string(corev1.ClaimPending)
			}
			problems = append(problems, fmt.Sprintf("it is %s, not Bound, and only a bound claim can be resized", phase))
		}
		if pvc.DeletionTimestamp != nil {
			problems = append(problems, "it is being deleted")
		}
	}
	c.Problem = strings.Join(problems, "; ")
	return c, nil
}

// Problems returns the reasons the plan cannot be carried out, one per
// claim, as "<claim>: <why>"; empty when every claim can be resized. A
// StorageClass that cannot expand for claims not yet created counts too.
func (p *Plan) Problems() []string {
	var out []string
	if p.From.Cmp(p.To) > 0 {
		out = append(out, fmt.Sprintf("volumeClaimTemplate %q requests %s, more than %s: a PVC can never shrink", p.Template, p.From.String(), p.To.String()))
	}
	for _, c := range p.Claims {
		if c.Problem != "" {
			out = append(out, c.Name+": "+c.Problem)
		}
	}
	return out
}

// Command is the `stsguard expand` command line that carries out the plan.
func (p *Plan) Command() string {
	return fmt.Sprintf("stsguard expand statefulset/%s -n %s --template %s --size %s", p.StatefulSet, p.Namespace, p.Template, p.To.String())
}

// Summary lists the claims on one line for a message, as
// `data-web-0 (10Gi, StorageClass "standard", can expand), data-web-3
// (not created yet)`.
func (p *Plan) Summary() string {
	parts := make([]string, 0, len(p.Claims))
	for _, c := range p.Claims {
		parts = append(parts, c.Name+" ("+c.Describe()+")")
	}
	if p.MoreNotCreated > 0 {
		parts = append(parts, fmt.Sprintf("and %d more ordinals without a PVC yet (created from the template)", p.MoreNotCreated))
	}
	if len(parts) == 0 {
		return "no PVCs yet"
	}
	return strings.Join(parts, ", ")
}

// Describe says what the claim is: its request, StorageClass and whether it
// can expand, or that it does not exist yet.
func (c *Claim) Describe() string {
	if c.PVC == nil {
		return "not created yet: the StatefulSet controller creates it from the template"
	}
	class := "no StorageClass"
	if c.StorageClass != "" {
		class = fmt.Sprintf("StorageClass %q", c.StorageClass)
	}
	s := c.Request.String() + ", " + class
	if c.Expandable {
		s += ", can expand"
	} else {
		s += ", cannot expand"
	}
	if c.Leftover {
		s += ", leftover of a scale-down"
	}
	return s
}
