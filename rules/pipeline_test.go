package rules

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/stsguard/stsguard/engine"
)

// A mutator that fails midway (a panic, an internal error after it changed
// something) leaves nothing of its own: not in the patch, not in the object
// that is judged next; the mutators before it keep theirs.
func TestAMutatorThatFailsMidwayLeavesNothing(t *testing.T) {
	for _, fail := range []struct {
		name string
		do   func() field.ErrorList
	}{
		{"panic", func() field.ErrorList { panic("boom") }},
		{"internal error", func() field.ErrorList {
			return field.ErrorList{field.InternalError(field.NewPath("spec"), assert.AnError)}
		}},
	} {
		t.Run(fail.name, func(t *testing.T) {
			failing := engine.Rule{
				ID: "fails-midway", Action: engine.Mutate, FindingAction: engine.Warn, Description: "a test mutator",
				MutateStatefulSet: func(_ context.Context, in *engine.Input[*appsv1.StatefulSet], _ engine.Lookup, m *engine.Mutation) field.ErrorList {
					in.Object.Spec.Replicas = ptr.To[int32](99)
					m.Set("fails-midway", field.NewPath("spec", "replicas"), "/spec/replicas", 99, "half done")
					return fail.do()
				},
			}
			e, err := engine.New(only(testConfig(), TerminationGracePeriod), append(All(), failing))
			require.NoError(t, err)
			sts := withContainer("cassandra:4.1")
			sts.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](30)
			sts.Spec.Replicas = ptr.To[int32](3)
			mutated, m, res := mutate(e, create(sts), objects())
			require.Len(t, res.Findings, 1)
			assert.Contains(t, res.Findings[0].Error.Error(), "so the object was left as it was")
			assert.Equal(t, int32(3), *mutated.Spec.Replicas, "the failed mutator's change is gone")
			assert.Equal(t, int64(300), *mutated.Spec.Template.Spec.TerminationGracePeriodSeconds, "the one before keeps its change")
			require.Len(t, m.Changes(), 1)
			assert.Equal(t, TerminationGracePeriod, m.Changes()[0].Rule)
			assert.Equal(t, mutated, applyPatch(t, sts, m), "the patch and the object agree")
		})
	}
}
