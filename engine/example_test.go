package engine_test

import (
	"context"
	"fmt"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/internal/lookuptest"
	"github.com/stsguard/stsguard/rules"
)

// web returns a StatefulSet web in namespace shop whose pods run image and
// whose governing Service is web.
func web(image string) *appsv1.StatefulSet {
	labels := map[string]string{"app": "web"}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec: appsv1.StatefulSetSpec{
			ServiceName: "web",
			Selector:    &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: image}}},
			},
		},
	}
}

// An engine of stsguard's built-in rules (rules.All) under the default
// policy decides the CREATE of a redis StatefulSet whose headless Service
// exists, as the apiserver's call of the mutating then the validating
// webhook would: it is admitted with a warning, and a patch raises its
// terminationGracePeriodSeconds to what redis needs.
func ExampleEngine_Admit() {
	e, err := engine.New(engine.DefaultConfig(), rules.All())
	if err != nil {
		panic(err)
	}
	req := engine.NewRequest(engine.MutateAndValidate, &engine.Input[*appsv1.StatefulSet]{
		Operation: admissionv1.Create,
		Object:    web("redis:7.4"),
	})
	// The objects the rules look up. The webhook reads them from its
	// informer cache (package lookup).
	lk := lookuptest.MustObjects(&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": "web"}},
	})

	d, err := e.Admit(context.Background(), req, lk)
	if err != nil {
		panic(err) // a malformed Request only
	}
	fmt.Println("denied:", d.Denied())
	for _, f := range d.Findings {
		fmt.Printf("%s %s at %s\n", f.Action, f.Rule, f.Error.Field)
	}
	for _, c := range d.Mutation.Changes() {
		fmt.Printf("%s %s %v\n", c.Patch.Operation, c.Patch.Path, c.Patch.Value)
	}
	// Output:
	// denied: false
	// Warn readiness-probe-missing at spec.template.spec.containers[0].readinessProbe
	// add /spec/template/spec/terminationGracePeriodSeconds 60
}

// A StatefulSet whose governing Service is not headless is denied: the
// findings print as kubectl prints the causes of the 422 Invalid status
// the webhook answers, each tagged with its rule.
func ExampleEngine_Admit_denied() {
	e, err := engine.New(engine.DefaultConfig(), rules.All())
	if err != nil {
		panic(err)
	}
	sts := web("nginx:1.27")
	sts.Spec.Template.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/"}},
	}
	req := engine.NewRequest(engine.MutateAndValidate, &engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Create, Object: sts})
	lk := lookuptest.MustObjects(&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec:       corev1.ServiceSpec{ClusterIP: "10.96.0.10", Selector: map[string]string{"app": "web"}},
	})

	d, err := e.Admit(context.Background(), req, lk)
	if err != nil {
		panic(err)
	}
	fmt.Println("denied:", d.Denied())
	for _, f := range d.Findings.ByAction(engine.Deny) {
		fmt.Println(f)
	}
	fmt.Println("patch operations:", len(d.Mutation.Patch()))
	// Output:
	// denied: true
	// spec.serviceName: Invalid value: "web": Service "web" is not headless (spec.clusterIP is "10.96.0.10"), so the pods get no per-pod DNS records; a StatefulSet's governing Service needs clusterIP: None, and clusterIP cannot be changed in place: delete the Service and re-create it with spec.clusterIP: None [rule: headless-service-not-headless]
	// patch operations: 0
}

// New takes the registry of rules it runs and the policy they run under.
// Here a registry of one rule of one's own, a check of StatefulSets, whose
// default action (Warn) the policy raises to Deny.
func ExampleNew() {
	imageTag := engine.Rule{
		ID:          "image-tag-missing",
		Area:        engine.AreaRollout,
		Action:      engine.Warn,
		Description: "Every container image names a tag, so that a rollout is a change of the pod template.",
		StatefulSet: func(_ context.Context, in *engine.Input[*appsv1.StatefulSet], _ engine.Lookup) field.ErrorList {
			var errs field.ErrorList
			containers := field.NewPath("spec", "template", "spec", "containers")
			for i, c := range in.Object.Spec.Template.Spec.Containers {
				if !strings.Contains(c.Image, ":") {
					errs = append(errs, field.Invalid(containers.Index(i).Child("image"), c.Image,
						"names no tag: add one, such as "+c.Image+":1.27"))
				}
			}
			return errs
		},
	}
	cfg := engine.DefaultConfig()
	cfg.Actions = map[string]engine.Action{imageTag.ID: engine.Deny}
	e, err := engine.New(cfg, []engine.Rule{imageTag})
	if err != nil {
		panic(err) // a malformed Rule, or a policy naming an unknown rule
	}
	fmt.Println("action:", e.Action(imageTag.ID))

	req := engine.NewRequest(engine.Validating, &engine.Input[*appsv1.StatefulSet]{
		Operation: admissionv1.Create,
		Object:    web("nginx"),
	})
	d, err := e.Admit(context.Background(), req, lookuptest.MustObjects())
	if err != nil {
		panic(err)
	}
	for _, f := range d.Findings {
		fmt.Println(f)
	}
	// Output:
	// action: Deny
	// spec.template.spec.containers[0].image: Invalid value: "nginx": names no tag: add one, such as nginx:1.27 [rule: image-tag-missing]
}
