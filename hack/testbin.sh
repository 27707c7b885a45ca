#!/usr/bin/env bash
# Installs the pinned binaries the test bed runs into $TESTBIN (default .testbin/).
# Each binary is built from the Go module proxy and skipped when already present
# at the pinned version, so a warm cache costs nothing. The argument `registry`
# installs only the registry; `clis` also the CLIs (cosign, helm) but no
# cluster binaries.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
testbin="${TESTBIN:-$root/.testbin}"
mkdir -p "$testbin"

REGISTRY_VERSION=v3.1.2
ETCD_VERSION=v3.6.16
KUBE_VERSION=v1.37.2
KUBE_STAGING_VERSION=v0.37.2
COSIGN_VERSION=v2.6.5
HELM_VERSION=v3.22.0

# have NAME VERSION: true when $testbin/NAME was built at VERSION.
have() { [[ -x "$testbin/$1" && "$(cat "$testbin/$1.version" 2>/dev/null)" == "$2" ]]; }
mark() { echo "$2" > "$testbin/$1.version"; }

if have registry "$REGISTRY_VERSION"; then
  echo "testbin: registry $REGISTRY_VERSION present"
else
  echo "testbin: building registry $REGISTRY_VERSION"
  GOBIN="$testbin" go install "github.com/distribution/distribution/v3/cmd/registry@$REGISTRY_VERSION"
  mark registry "$REGISTRY_VERSION"
fi

if [[ "${1:-}" == "registry" ]]; then exit 0; fi

# install_cli NAME VERSION PACKAGE: a CLI the tests run as a user would, built
# with `go install` (neither module carries replace directives).
install_cli() {
  if have "$1" "$2"; then
    echo "testbin: $1 $2 present"
    return
  fi
  echo "testbin: building $1 $2"
  GOBIN="$testbin" go install "$3@$2"
  mark "$1" "$2"
}

install_cli cosign "$COSIGN_VERSION" github.com/sigstore/cosign/v2/cmd/cosign
install_cli helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm

# `testbin.sh clis` stops here, for machines that run no cluster tests.
if [[ "${1:-}" == "clis" ]]; then exit 0; fi

if have etcd "$ETCD_VERSION"; then
  echo "testbin: etcd $ETCD_VERSION present"
else
  echo "testbin: building etcd $ETCD_VERSION"
  # etcd's server module carries replace directives, which `go install pkg@v`
  # refuses; a small tools module requiring it builds the same binary.
  src="$testbin/src/etcd"
  rm -rf "$src" && mkdir -p "$src"
  printf 'module ferry.local/testbin/etcd\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" > "$src/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > "$src/tools.go"
  (cd "$src" && go mod tidy && go build -o "$testbin/etcd" go.etcd.io/etcd/server/v3)
  mark etcd "$ETCD_VERSION"
fi

if have kube-apiserver "$KUBE_VERSION"; then
  echo "testbin: kube-apiserver $KUBE_VERSION present"
else
  echo "testbin: building kube-apiserver $KUBE_VERSION (a few minutes on two cores)"
  src="$testbin/src/kube-apiserver"
  rm -rf "$src" && mkdir -p "$src"
  gomod="$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  {
    echo "module ferry.local/testbin/kube-apiserver"
    echo
    echo "go $(sed -n 's/^go //p' "$gomod")"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    # kubernetes' go.mod points its staging modules at ./staging; the proxy
    # serves them as k8s.io/<name> at the matching v0 version.
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#replace \1 => \1 '"$KUBE_STAGING_VERSION"'#p' "$gomod"
  } > "$src/go.mod"
  cat > "$src/tools.go" <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
  (cd "$src" && go mod tidy && go build -o "$testbin/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver)
  mark kube-apiserver "$KUBE_VERSION"
fi
