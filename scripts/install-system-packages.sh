#!/usr/bin/env bash
# Debian packages the tests drive for real: Chromium (the annotation page's browser test, through
# Playwright with executable_path; Playwright cannot download its own browser here) and
# Prometheus (it scrapes a local stack and answers the dashboards' queries). kubectl, which
# renders the kustomize overlays, comes with the machine image; say so plainly when it does not.
set -euo pipefail
packages=(chromium prometheus)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
command -v kubectl >/dev/null || echo "warning: kubectl is not installed; tests/deploy will fail" >&2
