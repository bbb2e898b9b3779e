#!/usr/bin/env bash
# Install what wgtrace needs on a Debian machine, as root: the tools a lab runs inside its
# nodes, and wgtrace itself (editable, with its test dependencies).
set -euo pipefail
cd "$(dirname "$0")"
pkgs="wireguard-go wireguard-tools iptables nftables iproute2 iputils-ping tcpdump openssh-server procps util-linux tmux catatonit"
# The browser tests of wgtrace serve: Debian's Chromium and its driver (selenium uses these, never a download).
pkgs="$pkgs chromium chromium-driver"
# tshark: the tests open trace --pcap files as Wireshark reads them.
pkgs="$pkgs tshark"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  apt-get update -qq
  # --no-install-recommends: wireguard-tools would otherwise pull in a whole kernel image.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check -e '.[test]'
