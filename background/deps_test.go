package background

import (
	"testing"

	"github.com/stretchr/testify/assert"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/stsguard/stsguard/kinds"
)

func sts(mod func(*appsv1.StatefulSet)) *appsv1.StatefulSet {
	s := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: "web", Generation: 1}}
	if mod != nil {
		mod(s)
	}
	return s
}

func template(name string, class *string) corev1.PersistentVolumeClaim {
	return corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: class}}
}

func TestStatefulSetDependents(t *testing.T) {
	cases := []struct {
		name string
		sts  *appsv1.StatefulSet
		want []key
	}{
		{"alone", sts(nil), []key{{kinds.StatefulSet, "db", "web"}}},
		{"its Service and Secrets", sts(func(s *appsv1.StatefulSet) {
			s.Spec.ServiceName = "web-hl"
			s.Spec.Template.Spec.Containers = []corev1.Container{{Name: "c", Env: []corev1.EnvVar{
				{Name: "P", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "p"}}},
			}}}
			s.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "tls"}}}}
		}), []key{{kinds.StatefulSet, "db", "web"}, {kinds.Service, "db", "web-hl"}, {kinds.Secret, "db", "creds"}, {kinds.Secret, "db", "tls"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.ElementsMatch(t, tc.want, statefulSetDependents(tc.sts))
		})
	}
}

func TestStatefulSetChanged(t *testing.T) {
	cases := []struct {
		name     string
		old, cur *appsv1.StatefulSet
		want     bool
	}{
		{"status only", sts(nil), sts(func(s *appsv1.StatefulSet) { s.Status.ReadyReplicas = 2 }), false},
		{"a new generation", sts(nil), sts(func(s *appsv1.StatefulSet) { s.Generation = 2 }), true},
		{"an exemption annotation", sts(nil), sts(func(s *appsv1.StatefulSet) { s.Annotations = map[string]string{"stsguard.io/exempt": "x"} }), true},
		{"a label", sts(nil), sts(func(s *appsv1.StatefulSet) { s.Labels = map[string]string{"a": "b"} }), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, statefulSetChanged(tc.old, tc.cur))
		})
	}
}

func TestUsesStorageClassAndOwnsClaim(t *testing.T) {
	fast := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fast"}}
	claim := func(ns, name string) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	}
	cases := []struct {
		name      string
		sts       *appsv1.StatefulSet
		usesFast  bool
		claim     *corev1.PersistentVolumeClaim
		ownsClaim bool
	}{
		{"no templates", sts(nil), false, claim("db", "data-web-0"), false},
		{"names the class", sts(func(s *appsv1.StatefulSet) {
			s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{template("data", ptr.To("fast"))}
		}), true, claim("db", "data-web-0"), true},
		{"names another class", sts(func(s *appsv1.StatefulSet) {
			s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{template("data", ptr.To("slow"))}
		}), false, claim("db", "data-web2-0"), false},
		{"names none: the default class", sts(func(s *appsv1.StatefulSet) {
			s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{template("data", nil)}
		}), true, claim("other", "data-web-0"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.usesFast, usesStorageClass(tc.sts, fast))
			assert.Equal(t, tc.ownsClaim, ownsClaim(tc.sts, tc.claim))
		})
	}
}
