#!/usr/bin/env bash
# render.sh VERSION DIR: prints hack/krew/stsguard.yaml with ${VERSION} and
# each ${SHA256_<OS>_<ARCH>} filled in: the sha256 of
# DIR/kubectl-stsguard_VERSION_<os>_<arch>.tar.gz, the archive the
# platform's uri names (archives.sh builds them). The platforms are those of
# the template. It fails, printing nothing, when VERSION is not the
# v-prefixed semantic version krew requires or an archive is missing.
set -euo pipefail

if [[ $# -ne 2 ]]; then
	echo "usage: $0 VERSION DIR" >&2
	exit 2
fi
version=$1 dir=$2
here=$(cd "$(dirname "$0")" && pwd)
template=$here/stsguard.yaml

if ! [[ $version =~ ^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$ ]]; then
	echo "render.sh: VERSION \"$version\" is not a semantic version with a leading v (such as v0.3.0), which krew requires" >&2
	exit 2
fi

sha256() {
	if command -v sha256sum >/dev/null; then sha256sum "$1"; else shasum -a 256 "$1"; fi | cut -d' ' -f1
}

# The template without its leading comment, which is about the template.
manifest=$(sed -n '/^apiVersion:/,$p' "$template")
manifest=${manifest//'${VERSION}'/$version}
for placeholder in $(grep -o '\${SHA256_[A-Z0-9]*_[A-Z0-9]*}' "$template" | sort -u); do
	platform=${placeholder#'${SHA256_'}
	platform=${platform%'}'}
	platform=${platform,,}
	archive=$dir/kubectl-stsguard_${version}_${platform}.tar.gz
	if [[ ! -f $archive ]]; then
		echo "render.sh: $archive is missing (hack/krew/archives.sh $version $dir builds it)" >&2
		exit 1
	fi
	manifest=${manifest//"$placeholder"/$(sha256 "$archive")}
done
if grep -q '\${' <<<"$manifest"; then
	echo "render.sh: placeholders left unfilled:" $(grep -o '\${[A-Za-z0-9_]*}' <<<"$manifest" | sort -u) >&2
	exit 1
fi
printf '%s\n' "$manifest"
