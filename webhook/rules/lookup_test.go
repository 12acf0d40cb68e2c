package rules

import (
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// fakeLookup is a Lookup over maps keyed "namespace/name".
type fakeLookup struct {
	services map[string]*corev1.Service
	secrets  map[string]*corev1.Secret
	err      error // returned by every call when set
}

func (f fakeLookup) Service(ns, name string) (*corev1.Service, error) {
	if f.err != nil {
		return nil, f.err
	}
	if s, ok := f.services[ns+"/"+name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("services"), name)
}

func (f fakeLookup) Secret(ns, name string) (*corev1.Secret, error) {
	if f.err != nil {
		return nil, f.err
	}
	if s, ok := f.secrets[ns+"/"+name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("secrets"), name)
}
