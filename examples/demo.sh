#!/usr/bin/env bash
# tern demo: a 3-host Kubernetes-style cluster in network namespaces.
#
# Usage (from the repository root or anywhere): sudo bash examples/demo.sh
# Needs: root, iproute2, ping; builds target/release/{ternd,ternctl} if missing.
#
# Three host namespaces share one L2 segment (a bridge in a "switch"
# namespace): 192.168.1.11, .12, .13. Each host has two pods wired the Calico
# way (pod eth0 10.244.H.(2+k)/32, default via 169.254.1.1, host end cali*
# with proxy ARP and a /32 route) and runs ternd with examples/demo-hostH.toml
# in a full iBGP mesh. The demo waits for the mesh to converge, shows the
# sessions and the kernel routes ternd installed, pings pod to pod across
# hosts, and removes everything on exit (processes by PID, then namespaces).
# Exits non-zero if any ping fails.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TAG="td$$"
WORK="$(mktemp -d "/tmp/tern-demo-$$.XXXXXX")"
NAMESPACES=()
PIDS=()

log() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() {
    printf 'demo: ERROR: %s\n' "$*" >&2
    exit 1
}

cleanup() {
    local rc=$? pid ns
    set +e
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null
    done
    for ns in "${NAMESPACES[@]}"; do
        ip netns del "$ns" 2>/dev/null
    done
    if ((rc != 0)); then
        echo "demo failed; ternd logs kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

[[ $EUID -eq 0 ]] || die "needs root (network namespaces): sudo bash examples/demo.sh"
for tool in ip ping sed; do
    command -v "$tool" >/dev/null || die "missing $tool"
done

TERND="$ROOT/target/release/ternd"
TERNCTL="$ROOT/target/release/ternctl"
if [[ ! -x "$TERND" || ! -x "$TERNCTL" ]]; then
    log "building release binaries"
    (cd "$ROOT" && cargo build --release --bins)
fi

# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND until it succeeds.
wait_for() {
    local what="$1" secs="$2"
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "timed out after ${secs}s waiting for: $what"
        sleep 0.2
    done
}

newns() {
    ip netns add "$1"
    NAMESPACES+=("$1")
    ip -n "$1" link set lo up
}

log "building the cluster: switch + 3 hosts x 2 pods"
SW="${TAG}sw"
newns "$SW"
ip -n "$SW" link add br0 type bridge
ip -n "$SW" link set br0 up
# The segment's gateway. Hosts need a default route: proxy ARP on cali* only
# answers the pods' 169.254.1.1 when the host can route that address.
ip -n "$SW" addr add 192.168.1.1/24 dev br0

for h in 1 2 3; do
    H="${TAG}h$h"
    newns "$H"
    ip link add eth0 netns "$H" type veth peer name "h$h" netns "$SW"
    ip -n "$SW" link set "h$h" master br0 up
    ip -n "$H" addr add "192.168.1.1$h/24" dev eth0
    ip -n "$H" link set eth0 up
    ip -n "$H" route add default via 192.168.1.1 dev eth0
    ip netns exec "$H" sysctl -q -w net.ipv4.ip_forward=1
    for k in 0 1; do
        P="${TAG}h${h}p$k"
        POD_IP="10.244.$h.$((2 + k))"
        CALI="cali${h}x$k"
        newns "$P"
        ip link add eth0 netns "$P" type veth peer name "$CALI" netns "$H"
        ip -n "$P" addr add "$POD_IP/32" dev eth0
        ip -n "$P" link set eth0 up
        ip -n "$P" route add 169.254.1.1 dev eth0 scope link
        ip -n "$P" route add default via 169.254.1.1 dev eth0
        ip -n "$H" link set "$CALI" up
        ip netns exec "$H" sysctl -q -w "net.ipv4.conf.$CALI.proxy_arp=1"
        ip netns exec "$H" sysctl -q -w "net.ipv4.neigh.$CALI.proxy_delay=0"
        ip -n "$H" route add "$POD_IP/32" dev "$CALI"
    done
    echo "host $h: ${H} 192.168.1.1$h, pods 10.244.$h.2 10.244.$h.3"
done

log "starting ternd on every host"
for h in 1 2 3; do
    # The shipped configs put the control socket under /run/tern/; keep the
    # demo's in its own work directory.
    sed "s|/run/tern/|$WORK/|" "$ROOT/examples/demo-host$h.toml" >"$WORK/host$h.toml"
    "$TERND" --check --config "$WORK/host$h.toml" >/dev/null
    ip netns exec "${TAG}h$h" "$TERND" --config "$WORK/host$h.toml" 2>"$WORK/ternd-host$h.log" &
    PIDS+=("$!")
    echo "host $h: ternd pid $!, log $WORK/ternd-host$h.log"
done

ctl() {
    local h="$1"
    shift
    "$TERNCTL" --socket "$WORK/demo-host$h.sock" "$@"
}

# converged H: host H has both other hosts' blocks as proto bird routes.
converged() {
    local h="$1" o
    for o in 1 2 3; do
        ((o == h)) && continue
        ip -n "${TAG}h$h" route show proto bird "10.244.$o.0/26" | grep -q "via 192.168.1.1$o" || return 1
    done
}

START=$SECONDS
for h in 1 2 3; do
    wait_for "host $h routes" 60 converged "$h"
done
echo "converged after $((SECONDS - START))s"

log "ternctl show peers (host 1)"
ctl 1 show peers

for h in 1 2 3; do
    log "ip route show proto bird (host $h)"
    ip -n "${TAG}h$h" route show proto bird
done

log "pod-to-pod pings across hosts"
FAILED=0
for src in 1 2 3; do
    for dst in 1 2 3; do
        ((src == dst)) && continue
        for k in 0 1; do
            target="10.244.$dst.$((2 + k))"
            echo "--- pod 10.244.$src.2 (host $src) -> $target (host $dst)"
            if ! ip netns exec "${TAG}h${src}p0" ping -c 1 -W 2 "$target"; then
                FAILED=$((FAILED + 1))
            fi
        done
    done
done

if ((FAILED > 0)); then
    die "$FAILED ping(s) failed"
fi
log "all pings answered; cleaning up"
