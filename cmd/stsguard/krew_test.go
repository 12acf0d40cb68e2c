package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// krewPlugin is krew's Plugin manifest (sigs.k8s.io/krew/pkg/index,
// apiVersion krew.googlecontainertools.github.com/v1alpha2), decoded
// strictly: a misspelled field is an error, as it would be lost on krew.
type krewPlugin struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		Version          string         `json:"version"`
		ShortDescription string         `json:"shortDescription"`
		Description      string         `json:"description"`
		Caveats          string         `json:"caveats"`
		Homepage         string         `json:"homepage"`
		Platforms        []krewPlatform `json:"platforms"`
	} `json:"spec"`
}

type krewPlatform struct {
	Selector *metav1.LabelSelector `json:"selector"`
	URI      string                `json:"uri"`
	Sha256   string                `json:"sha256"`
	Files    []struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"files"`
	Bin string `json:"bin"`
}

var (
	krewTemplate = filepath.Join("..", "..", "hack", "krew", "stsguard.yaml")
	krewRender   = filepath.Join("..", "..", "hack", "krew", "render.sh")
	// krew's own patterns (internal/index/validation, internal/installation/semver).
	krewSafeName = regexp.MustCompile(`^[\w-]+$`)
	krewSHA256   = regexp.MustCompile(`^[a-f0-9]{64}$`)
	krewSemver   = regexp.MustCompile(`^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
)

func decodeKrew(t *testing.T, b []byte) krewPlugin {
	t.Helper()
	var p krewPlugin
	require.NoError(t, yaml.UnmarshalStrict(b, &p))
	return p
}

// checkKrewPlugin checks what krew's ValidatePlugin checks, and what
// installing kubectl stsguard needs: bin is kubectl-stsguard
// (kubectl-stsguard.exe on Windows) and is one of the files installed, and
// so is LICENSE, which krew-index requires in every archive.
// version and sha256 return the placeholder or value each platform has.
func checkKrewPlugin(t *testing.T, p krewPlugin, version string, sha256Of func(os, arch string) string) {
	t.Helper()
	assert.Equal(t, "krew.googlecontainertools.github.com/v1alpha2", p.APIVersion)
	assert.Equal(t, "Plugin", p.Kind)
	assert.Equal(t, "stsguard", p.Metadata.Name, "krew installs it as kubectl-<name>; the index file must be <name>.yaml")
	assert.Regexp(t, krewSafeName, p.Metadata.Name)
	assert.Equal(t, version, p.Spec.Version)
	assert.NotEmpty(t, p.Spec.ShortDescription)
	assert.NotContains(t, p.Spec.ShortDescription, "\n", "krew refuses line breaks in shortDescription")
	assert.LessOrEqual(t, len(p.Spec.ShortDescription), 50, "krew search's column")
	assert.NotEmpty(t, strings.TrimSpace(p.Spec.Description))
	u, err := url.Parse(p.Spec.Homepage)
	if assert.NoError(t, err) {
		assert.Equal(t, "https", u.Scheme, p.Spec.Homepage)
	}

	require.NotEmpty(t, p.Spec.Platforms)
	seen := map[string]bool{}
	for i, pl := range p.Spec.Platforms {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			require.NotNil(t, pl.Selector, "krew refuses a platform without selector")
			require.NotEmpty(t, pl.Selector.MatchLabels, "a selector by os and arch")
			assert.Empty(t, pl.Selector.MatchExpressions)
			for k := range pl.Selector.MatchLabels {
				assert.Contains(t, []string{"os", "arch"}, k, "krew's selector keys")
			}
			goos, arch := pl.Selector.MatchLabels["os"], pl.Selector.MatchLabels["arch"]
			assert.Contains(t, []string{"linux", "darwin", "windows"}, goos)
			assert.Contains(t, []string{"amd64", "arm64"}, arch)
			assert.False(t, seen[goos+"/"+arch], "%s/%s twice", goos, arch)
			seen[goos+"/"+arch] = true

			want := "kubectl-stsguard"
			if goos == "windows" {
				want += ".exe"
			}
			assert.Equal(t, want, pl.Bin)
			require.NotEmpty(t, pl.Files, "files lists what the archive installs")
			var installed, licensed bool
			for _, f := range pl.Files {
				assert.NotEmpty(t, f.From)
				assert.NotEmpty(t, f.To)
				installed = installed || (f.From == pl.Bin && f.To == ".")
				licensed = licensed || f.From == "LICENSE"
			}
			assert.True(t, installed, "bin %s is one of the files, installed at the top", pl.Bin)
			assert.True(t, licensed, "LICENSE is one of the files: krew-index requires it in every archive")

			assert.Equal(t, fmt.Sprintf("https://github.com/stsguard/stsguard/releases/download/%s/kubectl-stsguard_%s_%s_%s.tar.gz", version, version, goos, arch), pl.URI)
			assert.Equal(t, sha256Of(goos, arch), pl.Sha256)
		})
	}
	for _, platform := range []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64"} {
		assert.True(t, seen[platform], "a platform for %s", platform)
	}
}

// The template has placeholders where a release fills in the version and
// each archive's sha256, and everything else krew requires.
func TestKrewManifestTemplate(t *testing.T) {
	b, err := os.ReadFile(krewTemplate)
	require.NoError(t, err)
	checkKrewPlugin(t, decodeKrew(t, b), "${VERSION}", func(goos, arch string) string {
		return "${SHA256_" + strings.ToUpper(goos+"_"+arch) + "}"
	})
}

// hack/krew/render.sh fills the template in as a release does: the result
// is a manifest krew accepts, with each archive's sha256.
func TestKrewManifestRendered(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("render.sh needs bash")
	}
	const version = "v1.2.3"
	dir := t.TempDir()
	sums := map[string]string{}
	for _, platform := range []string{"linux_amd64", "linux_arm64", "darwin_amd64", "darwin_arm64", "windows_amd64"} {
		body := []byte("archive of " + platform)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "kubectl-stsguard_"+version+"_"+platform+".tar.gz"), body, 0o600))
		sum := sha256.Sum256(body)
		sums[platform] = hex.EncodeToString(sum[:])
	}
	render := func(version string) (string, string, error) {
		cmd := exec.Command("bash", krewRender, version, dir)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		return string(out), stderr.String(), err
	}

	out, stderr, err := render(version)
	require.NoError(t, err, stderr)
	assert.NotContains(t, out, "${", "every placeholder filled in")
	p := decodeKrew(t, []byte(out))
	assert.Regexp(t, krewSemver, p.Spec.Version)
	checkKrewPlugin(t, p, version, func(goos, arch string) string {
		sum := sums[goos+"_"+arch]
		assert.Regexp(t, krewSHA256, sum)
		return sum
	})

	out, stderr, err = render("7838a5b-dirty")
	assert.Error(t, err)
	assert.Empty(t, out)
	assert.Contains(t, stderr, `VERSION "7838a5b-dirty" is not a semantic version with a leading v`)

	require.NoError(t, os.Remove(filepath.Join(dir, "kubectl-stsguard_"+version+"_darwin_arm64.tar.gz")))
	out, stderr, err = render(version)
	assert.Error(t, err)
	assert.Empty(t, out)
	assert.Contains(t, stderr, "kubectl-stsguard_v1.2.3_darwin_arm64.tar.gz is missing")
}
