package engine

// IDs of the rules and mutators. They are a public interface (policy files,
// exemption annotations, metrics labels, audit output): never rename one.
const (
	// StatefulSet and Service: headless pairing.
	ServiceNameEmpty                = "service-name-empty"
	HeadlessServiceMissing          = "headless-service-missing"
	HeadlessServiceNotHeadless      = "headless-service-not-headless"
	HeadlessServiceSelectorMismatch = "headless-service-selector-mismatch"
	HeadlessServiceSelectorChange   = "headless-service-selector-change"
	HeadlessServiceDelete           = "headless-service-delete"
	HeadlessServiceDefault          = "headless-service-default"

	// Secrets and credentials.
	SecretRefMissing  = "secret-ref-missing"
	SecretKeyRemoved  = "secret-key-removed"
	SecretInUseDelete = "secret-in-use-delete"
	WeakPassword      = "weak-password"
	PasswordSecretRef = "password-secret-ref"

	// Storage.
	StorageClassNotFound         = "storage-class-not-found"
	StorageClassNotExpandable    = "storage-class-not-expandable"
	VolumeClaimTemplateUnmounted = "volume-claim-template-unmounted"
	PVCRetentionDelete           = "pvc-retention-delete"
	VolumeClaimTemplateShrink    = "volume-claim-template-shrink"
	VolumeClaimTemplateImmutable = "volume-claim-template-immutable"
	VolumeClaimTemplateResize    = "volume-claim-template-resize"
	PVCSmallerThanTemplate       = "pvc-smaller-than-template"

	// Rollouts and pod lifecycle.
	PartitionExceedsReplicas    = "partition-exceeds-replicas"
	ReadinessProbeMissing       = "readiness-probe-missing"
	TerminationGracePeriodShort = "termination-grace-period-short"
	TerminationGracePeriod      = "termination-grace-period"
	RolloutPartition            = "rollout-partition"

	// stsguard's own annotations.
	ExemptionInvalid = "exemption-invalid"
)

// catalog is the metadata of every rule and mutator, in the order of the
// documentation. Kinds are filled in by New from where each ID is registered.
var catalog = []Meta{
	{ID: ServiceNameEmpty, Action: Warn,
		Description: "spec.serviceName is empty, so the pods get no stable DNS names (<pod>.<serviceName>.<namespace>.svc)."},
	{ID: HeadlessServiceMissing, Action: Warn,
		Description: "spec.serviceName names no Service in the StatefulSet's namespace. Warn: kubectl apply -f may create the StatefulSet before its Service."},
	{ID: HeadlessServiceNotHeadless, Action: Deny,
		Description: `The Service named by a StatefulSet's spec.serviceName is not headless (spec.clusterIP is not "None"), so the pods get no per-pod DNS records. Checked when the StatefulSet is written and when the Service is.`},
	{ID: HeadlessServiceSelectorMismatch, Action: Deny,
		Description: "The Service named by spec.serviceName has an empty selector or one that does not select the pod template's labels."},
	{ID: HeadlessServiceSelectorChange, Action: Deny,
		Description: "A Service UPDATE changes the selector so that it no longer selects the pod template labels of a StatefulSet that names the Service: the pods would lose their DNS records."},
	{ID: HeadlessServiceDelete, Action: Warn,
		Description: "DELETE of a Service that a StatefulSet names as its serviceName. Warn by default because Helm and kubectl delete Services before StatefulSets on uninstall; set Deny to protect running databases."},
	{ID: HeadlessServiceDefault, Action: Mutate,
		Description: `A Service created without spec.clusterIP under a name that a StatefulSet in its namespace uses as serviceName gets clusterIP: "None" (headless).`},
	{ID: SecretRefMissing, Action: Warn,
		Description: "A non-optional reference of the pod template (env valueFrom.secretKeyRef, envFrom, secret or projected volume, imagePullSecrets) names a Secret or key that does not exist: the pods would not start."},
	{ID: SecretKeyRemoved, Action: Deny,
		Description: "A Secret UPDATE removes a key that a StatefulSet references through a non-optional secretKeyRef or secret volume item: its next pod would not start."},
	{ID: SecretInUseDelete, Action: Warn,
		Description: "DELETE of a Secret that a StatefulSet references non-optionally: its next pod would not start."},
	{ID: WeakPassword, Action: Deny,
		Description: "A password, or a secret key chosen like one (MINIO_SECRET_KEY, AWS_SECRET_ACCESS_KEY), is empty or a well-known default (password, changeme, root, admin, example, minioadmin, minio123, ...): a literal env value of a StatefulSet, a Secret key a StatefulSet uses as a password, or a Secret key named like a password. The value is never echoed."},
	{ID: PasswordSecretRef, Action: Mutate,
		Description: "Moves a literal credential env value (a name ending in PASSWORD, SECRET, TOKEN, SECRET_KEY, ACCESS_KEY, PRIVATE_KEY, API_KEY, CREDENTIALS, ...) into the Secret <statefulset>-credentials and references it with valueFrom.secretKeyRef; on CREATE only, generates a password an image cannot start without (mysql, mariadb, postgres), and on an UPDATE warns instead. Never overwrites a Secret."},
	{ID: StorageClassNotFound, Action: Warn,
		Description: "A volumeClaimTemplate names a StorageClass that does not exist, or names none and the cluster has no default StorageClass: its PVCs would stay Pending. Checked on CREATE (volumeClaimTemplates are immutable)."},
	{ID: StorageClassNotExpandable, Action: Warn,
		Description: "The StorageClass of a volumeClaimTemplate does not set allowVolumeExpansion: true, so these volumes can never grow. Warn on CREATE; Deny on an UPDATE that grows the template, when the class of the template or of an existing PVC cannot expand (a policy action applies to both)."},
	{ID: VolumeClaimTemplateUnmounted, Action: Warn,
		Description: "A volumeClaimTemplate that no container mounts: every pod gets a PVC it never uses, and the data goes to the container's ephemeral filesystem instead."},
	{ID: PVCRetentionDelete, Action: Warn,
		Description: "persistentVolumeClaimRetentionPolicy whenDeleted or whenScaled is Delete on a database image: deleting or scaling down the StatefulSet deletes its data."},
	{ID: VolumeClaimTemplateShrink, Action: Deny,
		Description: "An UPDATE lowers the storage request of a volumeClaimTemplate: a PVC can never shrink. Judged in the mutating webhook, which sees the request before the apiserver's own validation rejects it."},
	{ID: VolumeClaimTemplateImmutable, Action: Deny,
		Description: "An UPDATE changes volumeClaimTemplates other than by growing a storage request (class, access modes, labels, adding or removing a template); the denial names each changed field path and says how to re-create the StatefulSet instead. Judged in the mutating webhook."},
	{ID: VolumeClaimTemplateResize, Action: Deny,
		Description: "An UPDATE only grows storage requests of volumeClaimTemplates. The apiserver would refuse it, and existing PVCs never follow a template: the denial lists every PVC (`<template>-<statefulset>-<ordinal>`) with its size, StorageClass and whether it can expand, and the `stsguard expand` command that resizes them and re-creates the StatefulSet. Judged in the mutating webhook."},
	{ID: PVCSmallerThanTemplate, Action: Warn,
		Description: "A StatefulSet CREATE finds PVCs under its names (left by a --cascade=orphan delete) that are smaller than its volumeClaimTemplates: the controller reuses them without resizing; the warning lists them and the `stsguard expand` command that grows them."},
	{ID: PartitionExceedsReplicas, Action: Warn,
		Description: "spec.updateStrategy.rollingUpdate.partition is greater than spec.replicas: no pod takes a new pod template, so the rollout is frozen."},
	{ID: ReadinessProbeMissing, Action: Warn,
		Description: "A container of a StatefulSet with podManagementPolicy OrderedReady has no readinessProbe: each next ordinal starts as soon as the previous one runs, not when it can serve."},
	{ID: TerminationGracePeriodShort, Action: Warn,
		Description: "terminationGracePeriodSeconds is below the image profile's value and termination-grace-period did not raise it (the mutation is Off, or the value was set explicitly)."},
	{ID: TerminationGracePeriod, Action: Mutate,
		Description: "Raises spec.template.spec.terminationGracePeriodSeconds from the API default (30) to the image profile's value (cassandra 300; mysql, mariadb, postgres, mongo, elasticsearch 120; kafka, zookeeper, rabbitmq, redis 60)."},
	{ID: RolloutPartition, Action: Mutate,
		Description: `On an UPDATE that changes the pod template of a StatefulSet annotated stsguard.io/canary: "N", sets spec.updateStrategy.rollingUpdate.partition to replicas-N so that only the N highest ordinals roll first; makes an implicit partition of a RollingUpdate explicit (0).`},
	{ID: ExemptionInvalid, Action: Warn,
		Description: "The stsguard.io/exempt annotation names an unknown rule, or has no non-empty stsguard.io/exempt-reason beside it, so it is ignored."},
}

// lookupMeta returns the catalog entry of id.
func lookupMeta(id string) (Meta, bool) {
	for _, m := range catalog {
		if m.ID == id {
			return m, true
		}
	}
	return Meta{}, false
}
