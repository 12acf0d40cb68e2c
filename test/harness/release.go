package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// ChartMeta is what the tests read of a Chart.yaml.
type ChartMeta struct {
	Version    string `json:"version"`
	AppVersion string `json:"appVersion"`
}

// ChartDir is charts/stsguard.
func ChartDir() string { return filepath.Join(Root(), "charts", "stsguard") }

// ReadChartMeta reads charts/stsguard/Chart.yaml as it is in the work tree.
func ReadChartMeta() (ChartMeta, error) {
	raw, err := os.ReadFile(filepath.Join(ChartDir(), "Chart.yaml"))
	if err != nil {
		return ChartMeta{}, err
	}
	var m ChartMeta
	return m, yaml.Unmarshal(raw, &m)
}

// Image is the image the chart runs for appVersion.
func Image(appVersion string) string { return "ghcr.io/stsguard/stsguard:" + appVersion }

// PreviousRelease returns the commit at which the chart was last at the
// version before the work tree's (the parent of the commit that set the
// current version), that version's metadata, and true: the previous
// release, chart and binary. It returns false when git has no earlier
// version: the first version, no git, or a shallow clone without it.
func PreviousRelease() (string, ChartMeta, bool) {
	cur, err := ReadChartMeta()
	if err != nil {
		return "", ChartMeta{}, false
	}
	commits, err := exec.Command("git", "-C", Root(), "log", "--format=%H", "--", "charts/stsguard/Chart.yaml").Output()
	if err != nil {
		return "", ChartMeta{}, false
	}
	at := "HEAD"
	for _, commit := range strings.Fields(string(commits)) {
		raw, err := exec.Command("git", "-C", Root(), "show", commit+":charts/stsguard/Chart.yaml").Output()
		if err != nil {
			return "", ChartMeta{}, false
		}
		var m ChartMeta
		if yaml.Unmarshal(raw, &m) != nil {
			return "", ChartMeta{}, false
		}
		if m.Version == cur.Version {
			at = commit + "^" // the last state before this version
			continue
		}
		resolved, err := exec.Command("git", "-C", Root(), "rev-parse", "--verify", "--quiet", at+"^{commit}").Output()
		if err != nil {
			return "", ChartMeta{}, false
		}
		raw, err = exec.Command("git", "-C", Root(), "show", at+":charts/stsguard/Chart.yaml").Output()
		if err != nil || yaml.Unmarshal(raw, &m) != nil {
			return "", ChartMeta{}, false
		}
		return strings.TrimSpace(string(resolved)), m, true
	}
	return "", ChartMeta{}, false
}

// CheckoutAt writes the tree of commit into a new directory under dir and
// returns its path.
func CheckoutAt(commit, dir string) (string, error) {
	out := filepath.Join(dir, "src-"+commit[:12])
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	archive := exec.Command("git", "-C", Root(), "archive", "--format=tar", commit)
	untar := exec.Command("tar", "-x", "-C", out)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return "", err
	}
	untar.Stdin = pipe
	if err := untar.Start(); err != nil {
		return "", err
	}
	archiveErr := archive.Run()
	untarErr := untar.Wait()
	if archiveErr != nil {
		return "", fmt.Errorf("git archive %s: %w", commit, archiveErr)
	}
	if untarErr != nil {
		return "", fmt.Errorf("tar -x of %s: %w", commit, untarErr)
	}
	return out, nil
}

// BuildAt builds cmd/stsguard of the source tree src into path.
func BuildAt(src, path string) error {
	cmd := exec.Command("go", "build", "-o", path, "./cmd/stsguard")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building stsguard in %s: %w: %s", src, err, out)
	}
	return nil
}
