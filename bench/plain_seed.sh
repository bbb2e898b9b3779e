#!/usr/bin/env bash
# plain_seed.sh — build the network of labs/seed.toml (at its last stage, "complete") with plain
# tools, as a baseline for timing wgtrace.  Usage:
#
#   plain_seed.sh up NAME      build it; returns once bcc has a handshake with both peers and
#                              home can ping target (10.10.13.61)
#   plain_seed.sh down NAME    kill its processes, delete its namespaces and /run/pln-NAME
#
# Names:  network namespaces  pln-NAME-<node>      (never wgt-: those are wgtrace's)
#         node directories    /run/pln-NAME/<node> (the node's /run: key files, wireguard socket)
#
# Tools: ip (netns add/del/pids/exec, link, addr, route), iptables, sysctl, wg, wireguard-go,
# plus unshare/mount for the socket directory (below), ping to check the result, kill/sleep.
# Nothing is done in the host's network namespace: every link is created inside a lab namespace
# (a veth is created in one and its peer end placed directly in the other).
#
# WireGuard: the kernel here has no wireguard module, so each wg0 is a wireguard-go process.
# wireguard-go and wg find each other through the fixed path /var/run/wireguard/wg0.sock
# (/var/run -> /run), so three nodes with a wg0 would collide on the host's /run. Every
# wireguard-go / wg command therefore runs as
#     ip netns exec pln-NAME-NODE unshare -m sh -c 'mount --bind /run/pln-NAME/NODE /run && ...'
# i.e. in a private mount namespace (unshare -m makes all mounts private, so nothing propagates
# to the host) where the node's own directory is /run. The socket ends up in
# /run/pln-NAME/NODE/wireguard/wg0.sock; the host's /run/wireguard is never created. The
# daemonised wireguard-go keeps that mount namespace alive; later wg commands set up the same
# bind and reach the same socket.
set -euo pipefail
export WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1
export LC_ALL=C

usage() { echo "usage: $0 up|down NAME   (NAME: lowercase letters and digits)" >&2; exit 2; }
die() { echo "plain_seed: $*" >&2; exit 1; }

[ $# -eq 2 ] || usage
ACTION=$1 NAME=$2
# No '-' in NAME, so the prefix pln-NAME- can never match another lab's namespaces.
case $NAME in ''|*[!a-z0-9]*) usage ;; esac
[ "$(id -u)" = 0 ] || die "needs root"

NODES="internet bcc home-router home company-router company target"
WG_NODES="bcc home company"
RUN=/run/pln-$NAME
HANDSHAKE_TIMEOUT=10          # seconds, as wgtrace
PREFIX=pln-$NAME-

ns() { echo "$PREFIX$1"; }
# on NODE SCRIPT: run a shell script inside NODE's network namespace.
on() { ip netns exec "$PREFIX$1" sh -ec "$2"; }
# onwg NODE SCRIPT: the same, with the node's own /run (for wireguard-go and wg).
onwg() { ip netns exec "$PREFIX$1" unshare -m sh -ec "mount --bind '$RUN/$1' /run; $2"; }

# ---------------------------------------------------------------------------------------------
lab_namespaces() {            # this lab's namespaces that exist now (also after a partial up)
  local p
  for p in /run/netns/"$PREFIX"*; do
    [ -e "$p" ] && echo "${p#/run/netns/}"
  done
  return 0
}

down() {
  local names pids n i
  names=$(lab_namespaces)
  # Processes are found by the network namespace they live in, never by name.
  for i in $(seq 1 40); do    # SIGTERM for ~2 s, then SIGKILL
    pids=""
    for n in $names; do pids="$pids $(ip netns pids "$n" 2>/dev/null || true)"; done
    [ -n "${pids// /}" ] || break
    if [ "$i" -le 20 ]; then kill $pids 2>/dev/null || true; else kill -9 $pids 2>/dev/null || true; fi
    sleep 0.1
  done
  for n in $names; do ip netns del "$n" 2>/dev/null || true; done
  # If our `up` brought /run/netns into being and no namespace is left in it, take it away again.
  if [ -e "$RUN/made-run-netns" ] && [ -d /run/netns ] && [ -z "$(ls -A /run/netns)" ]; then
    umount -l /run/netns 2>/dev/null || true
    rmdir /run/netns 2>/dev/null || true
  fi
  rm -rf "$RUN"
  [ -n "$names" ]
}

# ---------------------------------------------------------------------------------------------
veth() {                      # veth NODE_A IFACE_A NODE_B IFACE_B [BRIDGE_ON_A]
  ip -n "$(ns "$1")" link add "$2" type veth peer name "$4" netns "$(ns "$3")"
  [ -z "${5:-}" ] || ip -n "$(ns "$1")" link set "$2" master "$5"
  ip -n "$(ns "$1")" link set "$2" up
  ip -n "$(ns "$3")" link set "$4" up
}

addr() { ip -n "$(ns "$1")" addr add "$3" dev "$2"; }   # addr NODE IFACE CIDR

wg0() {                       # wg0 NODE ADDRESS LISTEN_PORT
  # wireguard-go daemonises: it returns once wg0 and its socket exist. Its banner (stderr) is
  # only shown if it fails.
  onwg "$1" "wireguard-go wg0 >/run/wireguard-go.log 2>&1 || { cat /run/wireguard-go.log >&2; exit 1; }
             ip addr add $2 dev wg0
             wg set wg0 private-key /run/private listen-port $3
             ip link set wg0 up"
}

up() {
  local n pub_bcc pub_home pub_company
  ok=0                        # global: the EXIT trap reads it after up() has returned
  [ ! -e "$RUN" ] || die "$NAME is already up (or half-built): run '$0 down $NAME' first"
  [ -z "$(lab_namespaces)" ] || die "namespaces $PREFIX* exist: run '$0 down $NAME' first"
  mkdir -m 700 "$RUN"
  [ -d /run/netns ] || touch "$RUN/made-run-netns"
  # From here on, any failure (or Ctrl-C) removes everything again.
  trap 'rc=$?; if [ $ok = 0 ]; then echo "plain_seed: up failed, removing $NAME" >&2; down || true; fi; exit $rc' EXIT
  trap 'exit 130' INT TERM

  # --- machines ---------------------------------------------------------------------------
  for n in $NODES; do
    mkdir -m 700 "$RUN/$n"
    ip netns add "$(ns "$n")"
    ip -n "$(ns "$n")" link set lo up
  done

  # --- cables: the company LAN is a bridge "lan" on company-router ------------------------
  ip -n "$(ns company-router)" link add lan type bridge
  ip -n "$(ns company-router)" link set lan up
  veth internet eth-bcc          bcc            eth0
  veth internet eth-home         home-router    wan
  veth internet eth-company      company-router wan
  veth home-router lan           home           wlp2s0
  veth company-router lan-company company       ens192 lan
  veth company-router lan-target  target        ens192 lan

  addr internet       eth-bcc     203.0.113.1/24
  addr internet       eth-home    198.51.100.1/24
  addr internet       eth-company 192.0.2.1/24
  addr bcc            eth0        203.0.113.13/24
  addr home-router    wan         198.51.100.14/24
  addr home-router    lan         192.168.0.1/24
  addr home           wlp2s0      192.168.0.9/24
  addr company-router wan         192.0.2.117/24
  addr company-router lan         10.10.13.1/24
  addr company        ens192      10.10.13.62/24
  addr target         ens192      10.10.13.61/24

  # --- routers, routes, firewalls (no VPN yet) -------------------------------------------
  on internet       "sysctl -qw net.ipv4.ip_forward=1"
  on bcc            "sysctl -qw net.ipv4.ip_forward=0
                     ip route add default via 203.0.113.1
                     iptables -P FORWARD DROP"
  on home-router    "sysctl -qw net.ipv4.ip_forward=1
                     ip route add default via 198.51.100.1
                     iptables -t nat -A POSTROUTING -o wan -j MASQUERADE --random-fully"
  on home           "sysctl -qw net.ipv4.ip_forward=0
                     ip route add default via 192.168.0.1"
  on company-router "sysctl -qw net.ipv4.ip_forward=1
                     ip route add default via 192.0.2.1
                     iptables -t nat -A POSTROUTING -o wan -j MASQUERADE --random-fully"
  on company        "sysctl -qw net.ipv4.ip_forward=0
                     ip route add default via 10.10.13.1
                     iptables -P FORWARD DROP"
  on target         "sysctl -qw net.ipv4.ip_forward=0
                     ip route add default via 10.10.13.1"

  # --- WireGuard: a fresh key pair per node, wg0 as a wireguard-go process ---------------
  for n in $WG_NODES; do
    (umask 077; wg genkey > "$RUN/$n/private")
    wg pubkey < "$RUN/$n/private" > "$RUN/$n/public"
  done
  pub_bcc=$(cat "$RUN/bcc/public")
  pub_home=$(cat "$RUN/home/public")
  pub_company=$(cat "$RUN/company/public")
  wg0 bcc     192.168.2.1/24 38371
  wg0 home    192.168.2.2/24 52796
  wg0 company 192.168.2.3/24 49830

  # Peers: bcc first, so the first initiations from home and company are answered.
  onwg bcc     "wg set wg0 peer '$pub_home' allowed-ips 192.168.2.2/32 persistent-keepalive 15 \
                           peer '$pub_company' allowed-ips 192.168.2.3/32,10.10.13.0/24 persistent-keepalive 15"
  onwg home    "wg set wg0 peer '$pub_bcc' allowed-ips 192.168.2.0/24,10.10.13.0/24 \
                           endpoint 203.0.113.13:38371 persistent-keepalive 15"
  onwg company "wg set wg0 peer '$pub_bcc' allowed-ips 192.168.2.0/24 \
                           endpoint 203.0.113.13:38371 persistent-keepalive 15"

  # --- the relay and the company gateway -------------------------------------------------
  on home    "ip route add 10.10.13.0/24 via 192.168.2.1 dev wg0"
  on bcc     "sysctl -qw net.ipv4.ip_forward=1
              iptables -t filter -A FORWARD -i wg0 -j ACCEPT
              iptables -t filter -A FORWARD -o wg0 -j ACCEPT
              ip route add 10.10.13.0/24 via 192.168.2.1 dev wg0
              sysctl -qw net.ipv4.conf.all.send_redirects=0
              sysctl -qw net.ipv4.conf.wg0.send_redirects=0"
  on company "sysctl -qw net.ipv4.ip_forward=1
              iptables -t filter -A FORWARD -i wg0 -o ens192 -j ACCEPT
              iptables -t nat -A POSTROUTING -s 192.168.2.0/24 -o ens192 -j MASQUERADE
              iptables -t filter -A FORWARD -i ens192 -o wg0 -j ACCEPT"

  # --- wait for bcc's handshakes with both peers (poll every 50 ms), then check the path ---
  onwg bcc "i=0
            while :; do
              n=\$(wg show wg0 latest-handshakes | awk '\$2 != 0' | wc -l)
              [ \"\$n\" -ge 2 ] && exit 0
              i=\$((i + 1))
              [ \$i -lt $((HANDSHAKE_TIMEOUT * 20)) ] || { echo 'no handshake with both peers within ${HANDSHAKE_TIMEOUT}s' >&2; exit 1; }
              sleep 0.05
            done"
  ip netns exec "$(ns home)" ping -q -c1 -W2 10.10.13.61 >/dev/null || die "home cannot ping target 10.10.13.61"
  ok=1
  echo "plain lab $NAME is up: namespaces $PREFIX*, handshakes done, home -> target ok"
}

case $ACTION in
  up) up ;;
  down) if down; then echo "plain lab $NAME removed"; else echo "plain lab $NAME was not up"; fi ;;
  *) usage ;;
esac
