#!/usr/bin/env bash
# Idempotent: the Helm CLI (pinned) into .venv/bin/helm, built with `go install` (Go module proxy only;
# no release tarball is downloaded). Used by tests/test_helm_chart.py when helm is missing.
#   scripts/install-helm.sh            # → .venv/bin/helm
#   HELM_BIN_DIR=/usr/local/bin scripts/install-helm.sh
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=${HELM_VERSION:-v3.22.0}
BIN_DIR=${HELM_BIN_DIR:-.venv/bin}
target="$BIN_DIR/helm"

if [ -x "$target" ] && "$target" version --template '{{.Version}}' 2>/dev/null | grep -qx "$HELM_VERSION"; then
  exit 0  # already there, right version
fi
if ! command -v go >/dev/null 2>&1; then
  echo "install-helm: Go is needed to build helm $HELM_VERSION (go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION); install Go >= 1.26 (helm v3.22 needs it), or an older Go with GOTOOLCHAIN=auto" >&2
  exit 1
fi
gobin=$(mktemp -d)
trap 'rm -rf "$gobin"' EXIT
echo "install-helm: go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION (a few minutes on 2 cores)" >&2
# helm's version string comes from its ldflags in a release build; set the same ones so `helm version`
# reports the pinned version instead of "v3.x+unknown"
GOBIN="$gobin" CGO_ENABLED=0 go install \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
  "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
mkdir -p "$BIN_DIR"
install -m 0755 "$gobin/helm" "$target.tmp"
mv -f "$target.tmp" "$target"
"$target" version --short >&2
