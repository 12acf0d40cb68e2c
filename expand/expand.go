package expand

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/lookup"
	"github.com/stsguard/stsguard/resize"
)

// Options say what to expand.
type Options struct {
	// Namespace and Name name the StatefulSet.
	Namespace, Name string
	// Template is the volumeClaimTemplate to grow.
	Template string
	// Size is the new storage request; it must not be below the template's.
	Size resource.Quantity
	// DryRun prints the plan and sends every write as a server-side dry run
	// (dryRun=All): admission and validation run, nothing is stored.
	DryRun bool
	// Poll is how often progress is checked. Default 2s.
	Poll time.Duration
	// Out receives the plan and progress, one line per event.
	Out io.Writer
	// Warnings returns, and forgets, the API warnings that c's requests
	// received (an apiwarnings.Recorder set as the client's warning
	// handler). Run reads what stsguard's mutating webhook says it would
	// change in the dry-run re-create (engine.IsChangeWarning): a change
	// would make the StatefulSet controller replace every pod. Other
	// webhooks' changes cannot be told from their warnings, and the
	// apiserver drops warnings past 4 KiB; Run checks the created pod
	// template as well. Required.
	Warnings interface{ Take() []string }
}

// ErrRefused is returned (wrapped) when a check fails before anything was
// changed: a claim that is not Bound, a StorageClass that cannot expand, a
// smaller size, or a re-create that admission would deny.
var ErrRefused = errors.New("refused; nothing was changed")

// errResume tells how to go on after an interruption (Ctrl-C, --timeout):
// every step is idempotent, so running the same command again resumes.
var errResume = errors.New("run the same command again to resume")

// stateKey is the key of the state Secret that holds the StatefulSet to
// create, as JSON.
const stateKey = "statefulset.json"

// Labels of the state Secret.
const (
	managedByLabel = "app.kubernetes.io/managed-by"
	expandLabel    = "stsguard.io/expand"
)

// StateSecretName is the name of the Secret that holds the StatefulSet a run
// will create while the re-create is under way: "stsguard-expand-<name>".
func StateSecretName(statefulSet string) string { return "stsguard-expand-" + statefulSet }

// Run carries out the expansion with c, reading and writing the live
// cluster (no cache). It returns nil when the template has Size and every
// existing PVC of it has reached Size (or waits only for its pod to restart
// to grow its file system); an error wrapping ErrRefused when it changed
// nothing because a check failed; an error wrapping ctx's error and saying
// to run it again to resume when ctx ends first, whether while waiting or in
// the middle of an API call; any API error otherwise.
func Run(ctx context.Context, c client.Client, o Options) error {
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Warnings == nil {
		return errors.New("expand.Options.Warnings is required: without the warnings of its dry-run create, expand cannot tell whether admission would change the pod template")
	}
	r := &run{c: c, o: o, key: types.NamespacedName{Namespace: o.Namespace, Name: o.Name}}
	err := r.do(ctx)
	if err != nil && ctx.Err() != nil && !errors.Is(err, errResume) {
		// Interrupted in the middle of a call rather than while waiting.
		return fmt.Errorf("%w; interrupted before it finished: %w", err, errResume)
	}
	return err
}

type run struct {
	c   client.Client
	o   Options
	key types.NamespacedName
}

func (r *run) printf(format string, args ...any) { fmt.Fprintf(r.o.Out, format+"\n", args...) }

// did reports a write: "dry run: " first when it was a server-side dry run.
func (r *run) did(format string, args ...any) {
	if r.o.DryRun {
		format = "dry run: " + format
	}
	r.printf(format, args...)
}

func (r *run) do(ctx context.Context) error {
	what := fmt.Sprintf("statefulset/%s -n %s", r.o.Name, r.o.Namespace)
	mode := ""
	if r.o.DryRun {
		mode = " (dry run: nothing is changed)"
	}
	r.printf("expanding volumeClaimTemplate %q of %s to %s%s", r.o.Template, what, r.o.Size.String(), mode)

	live, state, err := r.load(ctx)
	if err != nil {
		return err
	}
	// target is the StatefulSet as it must end up.
	var target *appsv1.StatefulSet
	switch {
	case live != nil && live.DeletionTimestamp == nil:
		target = recreated(live, r.o.Template, r.o.Size)
	case state != nil:
		target = state
		r.printf("resuming: the StatefulSet is being re-created (saved in Secret %s)", StateSecretName(r.o.Name))
	default: // being deleted by someone else, and no state of ours
		target = recreated(live, r.o.Template, r.o.Size)
	}
	if target == nil {
		return fmt.Errorf("%s has no volumeClaimTemplate %q: %w", what, r.o.Template, ErrRefused)
	}
	planned := target
	if live != nil {
		planned = live
	}
	plan, err := resize.New(ctx, planned, r.o.Template, r.o.Size, lookup.Reader{Cache: r.c})
	if err != nil {
		return fmt.Errorf("%w: %w", err, ErrRefused)
	}
	if state != nil && live == nil {
		if q, _ := resize.StorageRequest(&target.Spec.VolumeClaimTemplates[resize.TemplateIndex(target, r.o.Template)]); q.Cmp(r.o.Size) != 0 {
			return fmt.Errorf("an earlier run was re-creating %s with %s; run it again with --size %s to finish it first: %w", what, q.String(), q.String(), ErrRefused)
		}
	}
	r.printPlan(plan)
	if problems := plan.Problems(); len(problems) > 0 {
		return fmt.Errorf("cannot expand %s:\n  %s\n%w", what, strings.Join(problems, "\n  "), ErrRefused)
	}
	recreate := live == nil || live.DeletionTimestamp != nil || !templateHasSize(live, r.o.Template, r.o.Size)
	if recreate && live != nil && live.DeletionTimestamp == nil {
		// Admission and validation of the re-create, before anything changes:
		// a server-side dry-run CREATE runs every admission webhook and the
		// apiserver's validation, and only then finds the name taken. It is
		// sent with the template at its current size: the PVCs are not grown
		// yet, and pvc-smaller-than-template would say so.
		r.printf("checking the re-create with a server-side dry run (admission webhooks and validation; warnings are about the StatefulSet as it stands)")
		if err := r.checkCreate(ctx, recreated(live, r.o.Template, plan.From)); err != nil {
			return err
		}
	}

	podsBefore, err := r.pods(ctx, target)
	if err != nil {
		return err
	}

	if err := r.resizeClaims(ctx, plan); err != nil {
		return err
	}
	if recreate {
		if err := r.recreate(ctx, live, target); err != nil {
			return err
		}
	} else {
		r.printf("statefulset/%s: template %q requests %s already; no re-create needed", r.o.Name, r.o.Template, r.o.Size.String())
		if state != nil && !r.o.DryRun {
			if err := r.dropState(ctx); err != nil {
				return err
			}
		}
	}
	if err := r.reportPods(ctx, target, podsBefore); err != nil {
		return err
	}
	if r.o.DryRun {
		r.printf("dry run complete: every write was accepted by the apiserver; nothing was changed")
	} else {
		r.printf("done: volumeClaimTemplate %q of %s is %s", r.o.Template, what, r.o.Size.String())
	}
	return nil
}

// load reads the StatefulSet (nil when it does not exist) and the state of
// an unfinished re-create (nil when there is none).
func (r *run) load(ctx context.Context) (*appsv1.StatefulSet, *appsv1.StatefulSet, error) {
	live := &appsv1.StatefulSet{}
	if err := r.c.Get(ctx, r.key, live); apierrors.IsNotFound(err) {
		live = nil
	} else if err != nil {
		return nil, nil, fmt.Errorf("reading statefulset/%s: %w", r.o.Name, err)
	}
	sec := &corev1.Secret{}
	err := r.c.Get(ctx, types.NamespacedName{Namespace: r.o.Namespace, Name: StateSecretName(r.o.Name)}, sec)
	switch {
	case apierrors.IsNotFound(err):
		if live == nil {
			return nil, nil, fmt.Errorf("statefulset/%s not found in namespace %s: %w", r.o.Name, r.o.Namespace, ErrRefused)
		}
		return live, nil, nil
	case err != nil:
		return nil, nil, fmt.Errorf("reading Secret %s: %w", StateSecretName(r.o.Name), err)
	}
	if sec.Labels[expandLabel] != r.o.Name {
		return nil, nil, fmt.Errorf("the Secret %s exists but was not written by stsguard expand (label %s=%s missing); rename or delete it: %w",
			sec.Name, expandLabel, r.o.Name, ErrRefused)
	}
	state := &appsv1.StatefulSet{}
	if err := json.Unmarshal(sec.Data[stateKey], state); err != nil || state.Name != r.o.Name || resize.TemplateIndex(state, r.o.Template) < 0 {
		return nil, nil, fmt.Errorf("the Secret %s does not hold statefulset/%s with template %q; delete it if no expand is running: %w",
			sec.Name, r.o.Name, r.o.Template, ErrRefused)
	}
	return live, state, nil
}

// recreated returns the StatefulSet to create in place of sts: its metadata
// that a client may set (no uid, resourceVersion, generation, timestamps,
// managedFields or deletion finalizers), its spec with template grown to
// size, no status. It is nil when sts has no such template.
func recreated(sts *appsv1.StatefulSet, template string, size resource.Quantity) *appsv1.StatefulSet {
	i := resize.TemplateIndex(sts, template)
	if i < 0 {
		return nil
	}
	annotations := maps.Clone(sts.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	// The mutators that fill in defaults for a new StatefulSet step aside:
	// its pods run the stored template (see engine.RecreateAnnotation).
	annotations[engine.RecreateAnnotation] = string(sts.UID)
	out := &appsv1.StatefulSet{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: metav1.ObjectMeta{
			Name: sts.Name, Namespace: sts.Namespace,
			Labels: sts.Labels, Annotations: annotations, OwnerReferences: sts.OwnerReferences,
		},
		Spec: *sts.Spec.DeepCopy(),
	}
	for _, f := range sts.Finalizers {
		if f != metav1.FinalizerOrphanDependents && f != metav1.FinalizerDeleteDependents {
			out.Finalizers = append(out.Finalizers, f)
		}
	}
	t := &out.Spec.VolumeClaimTemplates[i]
	if t.Spec.Resources.Requests == nil {
		t.Spec.Resources.Requests = corev1.ResourceList{}
	}
	if have, ok := resize.StorageRequest(t); !ok || have.Cmp(size) < 0 {
		t.Spec.Resources.Requests[corev1.ResourceStorage] = size
	}
	return out
}

func templateHasSize(sts *appsv1.StatefulSet, template string, size resource.Quantity) bool {
	i := resize.TemplateIndex(sts, template)
	q, ok := resize.StorageRequest(&sts.Spec.VolumeClaimTemplates[i])
	return ok && q.Cmp(size) >= 0
}

func (r *run) printPlan(p *resize.Plan) {
	r.printf("plan: template %q %s -> %s; %d PVC(s):", p.Template, p.From.String(), p.To.String(), len(p.Claims)+p.MoreNotCreated)
	for _, c := range p.Claims {
		step := ""
		switch {
		case c.Problem != "":
			step = "cannot: " + c.Problem
		case c.PVC == nil:
			step = "created at " + p.To.String() + " when its pod first starts"
		case c.NeedsResize(p.To):
			step = "resize " + c.Request.String() + " -> " + p.To.String()
		case !resize.Resized(c.PVC, p.To):
			step = "requested " + p.To.String() + "; waiting for the volume to grow"
		default:
			step = "at " + p.To.String() + " already"
		}
		r.printf("  %s (%s): %s", c.Name, c.Describe(), step)
	}
	if p.MoreNotCreated > 0 {
		r.printf("  and %d more ordinals without a PVC yet: created at %s when their pods first start", p.MoreNotCreated, p.To.String())
	}
}

// checkCreate sends the re-create as a server-side dry run while the
// StatefulSet still exists: AlreadyExists means admission and validation
// accepted it.
func (r *run) checkCreate(ctx context.Context, target *appsv1.StatefulSet) error {
	r.o.Warnings.Take()
	err := r.c.Create(ctx, target.DeepCopy(), client.DryRunAll)
	var changes []string
	for _, w := range r.o.Warnings.Take() {
		if engine.IsChangeWarning(w) {
			changes = append(changes, w)
		}
	}
	switch {
	case err != nil && !apierrors.IsAlreadyExists(err):
		return fmt.Errorf("the apiserver would not accept the re-created StatefulSet, so it is left as it is: %w: %w", err, ErrRefused)
	case len(changes) > 0:
		return fmt.Errorf("admission would change the re-created StatefulSet, and the StatefulSet controller would then replace every pod:\n  %s\n"+
			"make the StatefulSet say this itself first (kubectl apply with these values rolls the pods once, when you choose), or exempt it from these rules, then run expand again: %w",
			strings.Join(changes, "\n  "), ErrRefused)
	}
	return nil
}

func (r *run) resizeClaims(ctx context.Context, p *resize.Plan) error {
	size := p.To.String()
	body, err := json.Marshal(map[string]any{"spec": map[string]any{"resources": map[string]any{"requests": map[string]string{"storage": size}}}})
	if err != nil {
		return err
	}
	for _, c := range p.Claims {
		if !c.NeedsResize(p.To) {
			continue
		}
		pvc := c.PVC.DeepCopy()
		opts := []client.PatchOption{}
		if r.o.DryRun {
			opts = append(opts, client.DryRunAll)
		}
		if err := r.c.Patch(ctx, pvc, client.RawPatch(types.MergePatchType, body), opts...); err != nil {
			return fmt.Errorf("requesting %s for PVC %s: %w", size, c.Name, err)
		}
		r.did("%s: requested %s", c.Name, size)
	}
	if r.o.DryRun {
		return nil
	}
	for _, c := range p.Claims {
		if c.PVC == nil {
			continue
		}
		if err := r.waitResized(ctx, c.Name, p.To); err != nil {
			return err
		}
	}
	return nil
}

// waitResized polls PVC name until resize.Resized, printing each change of
// its state.
func (r *run) waitResized(ctx context.Context, name string, size resource.Quantity) error {
	last := ""
	pvc := &corev1.PersistentVolumeClaim{}
	err := wait.PollUntilContextCancel(ctx, r.o.Poll, true, func(ctx context.Context) (bool, error) {
		if err := r.c.Get(ctx, types.NamespacedName{Namespace: r.o.Namespace, Name: name}, pvc); err != nil {
			return false, fmt.Errorf("reading PVC %s: %w", name, err)
		}
		if now := claimState(pvc); now != last {
			r.printf("%s: %s", name, now)
			last = now
		}
		return resize.Resized(pvc, size), nil
	})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("stopped waiting for PVC %s to reach %s (%s); %w: %w", name, size.String(), last, errResume, ctx.Err())
	}
	return err
}

// claimState describes a PVC's resize progress: its capacity and its
// resize conditions.
func claimState(pvc *corev1.PersistentVolumeClaim) string {
	capacity := pvc.Status.Capacity[corev1.ResourceStorage]
	s := "capacity " + capacity.String()
	for _, c := range pvc.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case corev1.PersistentVolumeClaimFileSystemResizePending:
			s += ", volume resized; the file system grows when its pod restarts (FileSystemResizePending)"
		default:
			s += ", " + string(c.Type)
		}
	}
	return s
}

// recreate saves target, deletes live with propagationPolicy Orphan, waits
// for it to be gone, creates target and drops the saved state.
func (r *run) recreate(ctx context.Context, live, target *appsv1.StatefulSet) error {
	if err := r.saveState(ctx, target); err != nil {
		return err
	}
	if live != nil && live.DeletionTimestamp == nil {
		opts := []client.DeleteOption{client.PropagationPolicy(metav1.DeletePropagationOrphan), client.Preconditions{UID: &live.UID}}
		if r.o.DryRun {
			opts = append(opts, client.DryRunAll)
		}
		if err := r.c.Delete(ctx, live.DeepCopy(), opts...); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting statefulset/%s with propagationPolicy Orphan: %w", r.o.Name, err)
		}
		r.did("statefulset/%s: deleted with propagationPolicy Orphan (its pods and PVCs stay)", r.o.Name)
	}
	if r.o.DryRun {
		// With the StatefulSet in place the create was sent as a dry run
		// before anything else (checkCreate); without, send it now.
		if live == nil {
			if err := r.c.Create(ctx, target.DeepCopy(), client.DryRunAll); err != nil {
				return fmt.Errorf("creating statefulset/%s: %w", r.o.Name, err)
			}
		}
		r.did("statefulset/%s: created with template %q at %s", r.o.Name, r.o.Template, r.o.Size.String())
		return nil
	}
	if live != nil {
		r.printf("statefulset/%s: waiting for the garbage collector to orphan its pods", r.o.Name)
		err := wait.PollUntilContextCancel(ctx, r.o.Poll, true, func(ctx context.Context) (bool, error) {
			err := r.c.Get(ctx, r.key, &appsv1.StatefulSet{})
			if apierrors.IsNotFound(err) {
				return true, nil
			}
			return false, err
		})
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("stopped waiting for statefulset/%s to be deleted; its new spec is saved in Secret %s: %w: %w",
					r.o.Name, StateSecretName(r.o.Name), errResume, ctx.Err())
			}
			return err
		}
	}
	created := target.DeepCopy()
	err := r.c.Create(ctx, created)
	changed := err == nil && !equality.Semantic.DeepEqual(created.Spec.Template, target.Spec.Template)
	if apierrors.IsAlreadyExists(err) {
		// Someone (or an earlier run) created it meanwhile: accept it if it
		// has the size.
		have := &appsv1.StatefulSet{}
		if gerr := r.c.Get(ctx, r.key, have); gerr != nil || !templateHasSize(have, r.o.Template, r.o.Size) {
			return fmt.Errorf("statefulset/%s was created by someone else meanwhile without template %q at %s: %w", r.o.Name, r.o.Template, r.o.Size.String(), err)
		}
		err = nil
	}
	if err != nil {
		return fmt.Errorf("creating statefulset/%s (its spec is saved in Secret %s; fix the cause and run the same command again): %w",
			r.o.Name, StateSecretName(r.o.Name), err)
	}
	r.printf("statefulset/%s: created with template %q at %s", r.o.Name, r.o.Template, r.o.Size.String())
	if err := r.dropState(ctx); err != nil {
		return err
	}
	// The annotation has done its work (it counts on CREATE only); left on
	// the object, every later copy of it would skip stsguard's defaults.
	unmark := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"`+engine.RecreateAnnotation+`":null}}}`))
	if err := r.c.Patch(ctx, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: r.o.Namespace, Name: r.o.Name}}, unmark); err != nil {
		r.printf("statefulset/%s: could not remove annotation %s (remove it by hand): %v", r.o.Name, engine.RecreateAnnotation, err)
	}
	if changed {
		// The dry run showed no change by stsguard; a webhook that does not
		// say what it changes, or a policy changed meanwhile, made one.
		return fmt.Errorf("statefulset/%s was created, but admission changed its pod template: the StatefulSet controller will replace the pods one by one (kubectl rollout status statefulset/%s -n %s)",
			r.o.Name, r.o.Name, r.o.Namespace)
	}
	return nil
}

// dropState deletes the state Secret of a finished re-create.
func (r *run) dropState(ctx context.Context) error {
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.o.Namespace, Name: StateSecretName(r.o.Name)}}
	if err := r.c.Delete(ctx, sec); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting Secret %s (the expansion is done; delete it by hand): %w", sec.Name, err)
	}
	return nil
}

func (r *run) saveState(ctx context.Context, target *appsv1.StatefulSet) error {
	data, err := json.Marshal(target)
	if err != nil {
		return err
	}
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: r.o.Namespace, Name: StateSecretName(r.o.Name),
			Labels:      map[string]string{managedByLabel: "stsguard", expandLabel: r.o.Name},
			Annotations: map[string]string{"stsguard.io/expand-template": r.o.Template, "stsguard.io/expand-size": r.o.Size.String()}},
		Type: "stsguard.io/expand-state",
		Data: map[string][]byte{stateKey: data},
	}
	opts := []client.CreateOption{}
	if r.o.DryRun {
		opts = append(opts, client.DryRunAll)
	}
	err = r.c.Create(ctx, sec.DeepCopy(), opts...)
	if apierrors.IsAlreadyExists(err) {
		have := &corev1.Secret{}
		if err = r.c.Get(ctx, client.ObjectKeyFromObject(sec), have); err == nil {
			have.Data = sec.Data
			have.Annotations = sec.Annotations
			uopts := []client.UpdateOption{}
			if r.o.DryRun {
				uopts = append(uopts, client.DryRunAll)
			}
			err = r.c.Update(ctx, have, uopts...)
		}
	}
	if err != nil {
		return fmt.Errorf("saving the StatefulSet to re-create in Secret %s: %w", sec.Name, err)
	}
	return nil
}

// pods returns the UIDs of the pods sts's selector selects, by name.
func (r *run) pods(ctx context.Context, sts *appsv1.StatefulSet) (map[string]types.UID, error) {
	sel, err := metav1.LabelSelectorAsSelector(sts.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("statefulset/%s: spec.selector: %w", sts.Name, err)
	}
	list := &corev1.PodList{}
	if err := r.c.List(ctx, list, client.InNamespace(sts.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, fmt.Errorf("listing the pods of statefulset/%s: %w", sts.Name, err)
	}
	out := map[string]types.UID{}
	for _, p := range list.Items {
		out[p.Name] = p.UID
	}
	return out, nil
}

func (r *run) reportPods(ctx context.Context, sts *appsv1.StatefulSet, before map[string]types.UID) error {
	after, err := r.pods(ctx, sts)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(before))
	for n := range before {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		switch uid, ok := after[n]; {
		case !ok:
			r.printf("pod %s: gone (deleted by someone else during the run)", n)
		case uid != before[n]:
			r.printf("pod %s: replaced during the run (uid %s, was %s)", n, uid, before[n])
		default:
			r.printf("pod %s: untouched (uid %s); the StatefulSet controller re-adopts it", n, uid)
		}
	}
	if len(names) == 0 {
		r.printf("no pods of statefulset/%s were running", r.o.Name)
	}
	return nil
}
