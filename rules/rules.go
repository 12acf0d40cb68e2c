package rules

import "github.com/stsguard/stsguard/engine"

// All returns the declaration of every built-in rule and mutator, in the
// order they run and are documented: by area, then as a user meets them.
// The declaration of rule "<id>" is in rules/<id>.go; exemption-invalid,
// whose check is the engine's reading of the exemption annotations, is
// declared by the engine and runs after these.
func All() []engine.Rule {
	return []engine.Rule{
		// Pairing: a StatefulSet's spec.serviceName names a headless Service
		// that selects its pods, the governing Service that gives each pod
		// its DNS name <pod>.<serviceName>.<namespace>.svc ("Stable Network
		// ID" in the StatefulSet concepts documentation), checked from the
		// StatefulSet's side and from the Service's.
		serviceNameEmpty,
		headlessServiceMissing,
		headlessServiceNotHeadless,
		headlessServiceSelectorMismatch,
		headlessServiceSelectorChange,
		headlessServiceDelete,
		headlessServiceDefault,

		// Credentials: Secrets referenced by pod templates, and passwords.
		secretRefMissing,
		secretKeyRemoved,
		secretInUseDelete,
		weakPassword,
		passwordSecretRef,

		// Storage: volumeClaimTemplates, their StorageClasses and PVCs.
		storageClassNotFound,
		storageClassNotExpandable,
		volumeClaimTemplateUnmounted,
		pvcRetentionDelete,
		volumeClaimTemplateShrink,
		volumeClaimTemplateImmutable,
		volumeClaimTemplateResize,
		pvcSmallerThanTemplate,

		// Rollout: rolling updates and the pod lifecycle.
		partitionExceedsReplicas,
		readinessProbeMissing,
		terminationGracePeriodShort,
		terminationGracePeriod,
		rolloutPartition,
	}
}

// New returns an engine that runs every built-in rule (All) under cfg
// (start from engine.DefaultConfig). Its errors are engine.New's: a policy
// that names an unknown rule, an invalid action, a missing pattern.
func New(cfg engine.Config) (*engine.Engine, error) { return engine.New(cfg, All()) }

// Catalog returns the catalog entry of every rule and mutator, in
// documentation order, exemption-invalid last: what `stsguard rules` prints
// and docs/rules.md lists.
func Catalog() []engine.Meta {
	e, err := New(engine.DefaultConfig())
	if err != nil {
		panic("the built-in rules are malformed: " + err.Error()) // caught by TestCatalog
	}
	return e.Catalog()
}
