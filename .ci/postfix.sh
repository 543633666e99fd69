#!/usr/bin/env bash
# Installs Postfix from Debian for the end-to-end relay tests. The tests
# start their own private instance on 127.0.0.1 with the templates in
# .ci/postfix/ (internal/postfixtest); this script only makes sure the
# binaries are there, and never configures, enables or starts the system
# service: debconf is told "No configuration" (no /etc/postfix/main.cf, so
# the init script has nothing to start) and, while apt runs, a policy-rc.d
# forbids starting any service at all.
set -euo pipefail

if [ -x /usr/sbin/postfix ] && [ -x /usr/lib/postfix/sbin/master ]; then
	echo "postfix: /usr/sbin/postfix already installed ($(/usr/sbin/postconf -d -h mail_version))"
	exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi

# Without a policy-rc.d of the host's own, one that denies every start
# (exit 101, see /usr/share/doc/init-system-helpers/README.policy-rc.d)
# lives as long as this script.
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
	$SUDO chmod 755 "$POLICY"
	trap '$SUDO rm -f "$POLICY"' EXIT
fi

export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
# dovecot.sh has usually refreshed the package lists just before; only when
# the install fails on missing or stale lists is apt-get update run, once.
install_postfix() { $SUDO apt-get install -y -qq --no-install-recommends postfix >/dev/null; }
if ! install_postfix 2>/dev/null; then
	$SUDO apt-get update -qq
	install_postfix
fi
echo "postfix: installed $(/usr/sbin/postconf -d -h mail_version)"
