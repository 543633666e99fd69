#!/usr/bin/env bash
# Installs Debian's Chromium for the gallery's browser test
# (mailing: TestGalleryChromium), which runs it headless on file:// pages
# with its network features off. Skips when it is already there.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
	echo "chromium: $(command -v chromium) already installed"
	exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
echo "chromium: installed $(chromium --version 2>/dev/null || echo chromium)"
