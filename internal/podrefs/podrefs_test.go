package podrefs

import (
	"testing"

	"github.com/stretchr/testify/assert"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

func keyRef(secret, key string, optional *bool) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key, Optional: optional}}
}

// ref is a SecretRef with its path rendered, for comparison.
type ref struct {
	Path, Secret, Key string
	Optional          bool
	EnvName, Image    string
}

func render(refs []SecretRef) []ref {
	var out []ref
	for _, r := range refs {
		out = append(out, ref{r.Path.String(), r.Secret, r.Key, r.Optional, r.EnvName, r.Image})
	}
	return out
}

func TestSecretRefs(t *testing.T) {
	root := field.NewPath("spec", "template", "spec")
	for _, tc := range []struct {
		name  string
		pod   corev1.PodSpec
		want  []ref
		names []string
	}{{
		name: "no references",
		pod: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Env: []corev1.EnvVar{
			{Name: "PLAIN", Value: "x"},
			{Name: "CM", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{Key: "k"}}},
		}}}, Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}},
	}, {
		name: "env and envFrom of init containers before containers",
		pod: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "init", Image: "busybox", EnvFrom: []corev1.EnvFromSource{
				{ConfigMapRef: &corev1.ConfigMapEnvSource{}},
				{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "all"}, Optional: ptr.To(true)}},
			}}},
			Containers: []corev1.Container{{Name: "db", Image: "mysql:8.4", Env: []corev1.EnvVar{
				{Name: "PLAIN", Value: "x"},
				{Name: "MYSQL_ROOT_PASSWORD", ValueFrom: keyRef("db", "password", nil)},
				{Name: "OPT", ValueFrom: keyRef("db", "opt", ptr.To(true))},
			}}},
		},
		want: []ref{
			{Path: "spec.template.spec.initContainers[0].envFrom[1].secretRef", Secret: "all", Optional: true},
			{Path: "spec.template.spec.containers[0].env[1].valueFrom.secretKeyRef", Secret: "db", Key: "password", EnvName: "MYSQL_ROOT_PASSWORD", Image: "mysql:8.4"},
			{Path: "spec.template.spec.containers[0].env[2].valueFrom.secretKeyRef", Secret: "db", Key: "opt", Optional: true, EnvName: "OPT", Image: "mysql:8.4"},
		},
		names: []string{"all", "db"},
	}, {
		name: "secret and projected volumes, one reference per item or one for the whole Secret",
		pod: corev1.PodSpec{Volumes: []corev1.Volume{
			{Name: "whole", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "tls"}}},
			{Name: "items", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds", Optional: ptr.To(true),
				Items: []corev1.KeyToPath{{Key: "user", Path: "u"}, {Key: "pass", Path: "p"}}}}},
			{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "ca"}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca"}}}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "tls"}}},
			}}}},
		}},
		want: []ref{
			{Path: "spec.template.spec.volumes[0].secret", Secret: "tls"},
			{Path: "spec.template.spec.volumes[1].secret.items[0]", Secret: "creds", Key: "user", Optional: true},
			{Path: "spec.template.spec.volumes[1].secret.items[1]", Secret: "creds", Key: "pass", Optional: true},
			{Path: "spec.template.spec.volumes[2].projected.sources[1].secret.items[0]", Secret: "ca", Key: "ca.crt"},
			{Path: "spec.template.spec.volumes[2].projected.sources[2].secret", Secret: "tls"},
		},
		names: []string{"ca", "creds", "tls"},
	}, {
		name: "imagePullSecrets last",
		pod: corev1.PodSpec{
			ImagePullSecrets: []corev1.LocalObjectReference{{Name: "registry"}},
			Containers:       []corev1.Container{{Name: "c", Env: []corev1.EnvVar{{Name: "P", ValueFrom: keyRef("registry", "k", nil)}}}},
		},
		want: []ref{
			{Path: "spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef", Secret: "registry", Key: "k", EnvName: "P"},
			{Path: "spec.template.spec.imagePullSecrets[0]", Secret: "registry"},
		},
		names: []string{"registry"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, render(SecretRefs(&tc.pod, root)))
			assert.Equal(t, tc.names, SecretNames(&tc.pod))
			for _, n := range tc.names {
				assert.True(t, References(&tc.pod, n), n)
			}
			assert.False(t, References(&tc.pod, "other"))
		})
	}
}

func TestContainers(t *testing.T) {
	pod := corev1.PodSpec{InitContainers: []corev1.Container{{Name: "i"}}, Containers: []corev1.Container{{Name: "a"}, {Name: "b"}}}
	var got []string
	for _, c := range Containers(&pod, field.NewPath("spec")) {
		got = append(got, c.Path.String()+"="+c.C.Name+"/"+c.List)
		assert.Same(t, c.C, map[string]*corev1.Container{"i": &pod.InitContainers[0], "a": &pod.Containers[0], "b": &pod.Containers[1]}[c.C.Name], "not a copy")
	}
	assert.Equal(t, []string{"spec.initContainers[0]=i/initContainers", "spec.containers[0]=a/containers", "spec.containers[1]=b/containers"}, got)
}

func TestStatefulSetsReferencing(t *testing.T) {
	sts := func(name string, pull ...string) *appsv1.StatefulSet {
		s := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: name}}
		for _, p := range pull {
			s.Spec.Template.Spec.ImagePullSecrets = append(s.Spec.Template.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: p})
		}
		return s
	}
	all := []*appsv1.StatefulSet{sts("a", "x"), sts("b"), sts("c", "y", "x")}
	for _, tc := range []struct {
		secret string
		want   []string
	}{{"x", []string{"a", "c"}}, {"y", []string{"c"}}, {"z", nil}} {
		var got []string
		for _, s := range StatefulSetsReferencing(all, tc.secret) {
			got = append(got, s.Name)
		}
		assert.Equal(t, tc.want, got, tc.secret)
	}
}
