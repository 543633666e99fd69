#!/usr/bin/env bash
# Installs Dovecot (IMAP + POP3) for the bounce tests. The tests start their
# own private instance on 127.0.0.1 (internal/dovecottest); this script
# only makes sure the binary is there, and never starts or enables the
# system service.
set -euo pipefail

if command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ]; then
	echo "dovecot: $( (command -v dovecot || echo /usr/sbin/dovecot) ) already installed"
	exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi

# On a host with a working init the package also starts the system daemon on
# the standard ports; the tests never use it (they pick free ports).
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends dovecot-imapd dovecot-pop3d >/dev/null
echo "dovecot: installed $(/usr/sbin/dovecot --version)"
