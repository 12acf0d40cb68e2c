#!/usr/bin/env bash
# archives.sh VERSION DIR: builds cmd/stsguard as kubectl-stsguard
# (kubectl-stsguard.exe on Windows) for every platform of
# hack/krew/stsguard.yaml, stamped with VERSION, and packs each with the
# repository's LICENSE (krew-index requires it in every archive) into
# DIR/kubectl-stsguard_VERSION_<os>_<arch>.tar.gz, the archive the manifest's
# uri names, then DIR/stsguard.yaml, the manifest render.sh fills in for
# them.
set -euo pipefail

if [[ $# -ne 2 ]]; then
	echo "usage: $0 VERSION DIR" >&2
	exit 2
fi
version=$1
# krew's rule, as render.sh checks it: before the builds, not after.
if ! [[ $version =~ ^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$ ]]; then
	echo "archives.sh: VERSION \"$version\" is not a semantic version with a leading v (such as v0.3.0), which krew requires" >&2
	exit 2
fi
mkdir -p "$2"
dir=$(cd "$2" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
pkg=github.com/stsguard/stsguard/internal/version

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for platform in $(grep -o 'kubectl-stsguard_${VERSION}_[a-z0-9]*_[a-z0-9]*\.tar\.gz' "$here/stsguard.yaml" | sort -u); do
	platform=${platform#'kubectl-stsguard_${VERSION}_'}
	platform=${platform%.tar.gz}
	goos=${platform%_*} goarch=${platform#*_}
	bin=kubectl-stsguard
	[[ $goos == windows ]] && bin=kubectl-stsguard.exe
	rm -rf "${work:?}/$platform" && mkdir "$work/$platform"
	echo "building $bin for $goos/$goarch" >&2
	(cd "$root" && CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch go build -trimpath \
		-ldflags "-s -w -X $pkg.Version=$version -X $pkg.Commit=$commit" \
		-o "$work/$platform/$bin" ./cmd/stsguard)
	install -m 0644 "$root/LICENSE" "$work/$platform/LICENSE"
	tar -C "$work/$platform" --owner=0 --group=0 --numeric-owner --mtime=@0 \
		-czf "$dir/kubectl-stsguard_${version}_${platform}.tar.gz" "$bin" LICENSE
done
"$here/render.sh" "$version" "$dir" > "$dir/stsguard.yaml.tmp"
mv "$dir/stsguard.yaml.tmp" "$dir/stsguard.yaml"
echo "wrote $dir/stsguard.yaml" >&2
