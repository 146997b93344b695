#!/usr/bin/env bash
# Debian packages the tests drive for real: Chromium (the annotation page's browser test, through
# Playwright with executable_path; Playwright cannot download its own browser here).
set -euo pipefail
packages=(chromium)
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
