package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/stsguard/stsguard/test/harness"
)

// No engine builds the image here (make docker-build is not part of make
// test), so this checks the Dockerfile against what deploy/base expects of
// the image: a static, -trimpath binary stamped with its version, on
// distroless static as the user the Deployment runs as, under the name the
// Makefile builds.
func TestImageMatchesTheDeployment(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(harness.Root(), "Dockerfile"))
	require.NoError(t, err)
	df := string(raw)
	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(df, -1)
	require.Len(t, froms, 2, "a build stage and a final stage")
	assert.Equal(t, "gcr.io/distroless/static:nonroot", froms[1][1])
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "internal/version.Version=${VERSION}", "internal/version.Commit=${COMMIT}"} {
		assert.Contains(t, df, want)
	}

	d := one[*appsv1.Deployment](t, render(t, "base"), "stsguard")
	sc := d.Spec.Template.Spec.SecurityContext
	user := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindStringSubmatch(df)
	require.NotNil(t, user)
	assert.Equal(t, fmt.Sprintf("%d:%d", *sc.RunAsUser, *sc.RunAsGroup), user[1], "the image's USER is the Deployment's runAsUser:runAsGroup")

	mk, err := os.ReadFile(filepath.Join(harness.Root(), "Makefile"))
	require.NoError(t, err)
	img := regexp.MustCompile(`(?m)^IMG\s+\?=\s+(\S+):`).FindStringSubmatch(string(mk))
	require.NotNil(t, img)
	image := container(t, d).Image
	assert.True(t, strings.HasPrefix(image, img[1]+":"), "deploy/base runs %s; make docker-build builds %s", image, img[1])
}
