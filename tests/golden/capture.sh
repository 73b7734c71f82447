#!/usr/bin/env bash
# Regenerates the golden BGP captures in this directory from real daemons.
#
# Usage: sudo bash tests/golden/capture.sh
# Needs: root, bird2 (bird/birdc 2.0.x), gobgpd + gobgp (3.x), tcpdump, iproute2.
#
# Every scenario builds its own pair of network namespaces joined by a veth,
# runs the daemons inside them (own config, control socket and pid file; the
# system BIRD service is never touched), captures `tcp port 179` with tcpdump
# and stops once the interesting exchange is done. Only 10.x / fd00:: addresses
# inside the namespaces are used. Namespaces and processes are removed by the
# EXIT trap, processes by PID.
set -euo pipefail

OUT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TAG="tg$$"
WORK="$(mktemp -d "/tmp/tern-golden-$$.XXXXXX")"
NAMESPACES=()
PIDS=()

log() { printf '[capture] %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

cleanup() {
    local pid ns
    set +e
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null
    done
    for ns in "${NAMESPACES[@]}"; do
        ip netns del "$ns" 2>/dev/null
    done
    if [[ -n "${KEEP_WORK:-}" ]]; then
        log "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

[[ $EUID -eq 0 ]] || die "needs root (network namespaces, tcpdump)"
for tool in bird birdc gobgpd gobgp tcpdump ip unshare; do
    command -v "$tool" >/dev/null || die "missing $tool (apt-get install -y bird2 gobgpd tcpdump)"
done

# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND every 0.2 s until it
# succeeds, fails the script after the deadline.
wait_for() {
    local what="$1" secs="$2"
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            die "timed out after ${secs}s waiting for: $what"
        fi
        sleep 0.2
    done
    log "ok: $what"
}

# make_pair SUFFIX: namespaces ${TAG}SUFFIXa / ${TAG}SUFFIXb joined by veth
# va-SUFFIX / vb-SUFFIX; sets NS_A NS_B IF_A IF_B.
make_pair() {
    local s="$1"
    NS_A="${TAG}${s}a"
    NS_B="${TAG}${s}b"
    IF_A="va${s}${TAG}"
    IF_B="vb${s}${TAG}"
    ip netns add "$NS_A"
    NAMESPACES+=("$NS_A")
    ip netns add "$NS_B"
    NAMESPACES+=("$NS_B")
    ip link add "$IF_A" netns "$NS_A" type veth peer name "$IF_B" netns "$NS_B"
    ip -n "$NS_A" link set lo up
    ip -n "$NS_B" link set lo up
    ip -n "$NS_A" link set "$IF_A" up
    ip -n "$NS_B" link set "$IF_B" up
}

# addr NS IF CIDR: adds an address (IPv6 without duplicate address detection,
# so BGP can bind at once).
addr() {
    if [[ "$3" == *:* ]]; then
        ip -n "$1" addr add "$3" dev "$2" nodad
    else
        ip -n "$1" addr add "$3" dev "$2"
    fi
}

# start_tcpdump NS IF FILE: captures full BGP segments; sets TCPDUMP_PID.
# IF "any" gives Linux cooked (SLL2) framing instead of Ethernet.
start_tcpdump() {
    local ns="$1" ifc="$2" file="$3"
    local errlog="$WORK/tcpdump-$(basename "$file").log"
    rm -f "$file"
    ip netns exec "$ns" tcpdump -i "$ifc" -s 0 -U -n -w "$file" 'tcp port 179' 2>"$errlog" &
    TCPDUMP_PID=$!
    PIDS+=("$TCPDUMP_PID")
    wait_for "tcpdump listening on $ifc" 10 grep -q "listening on" "$errlog"
}

# stop_tcpdump FILE: lets the last segments settle, then stops tcpdump cleanly.
stop_tcpdump() {
    sleep 1
    kill -INT "$TCPDUMP_PID"
    wait "$TCPDUMP_PID" || true
    # tcpdump drops privileges to its own user; hand the file to the tree's owner.
    chown --reference="$OUT" "$1"
    chmod 0644 "$1"
    log "wrote $1 ($(stat -c %s "$1") bytes)"
}

# start_bird NS NAME CONFIG: runs BIRD in the foreground inside NS with its own
# control socket $WORK/NAME.ctl and pid file.
start_bird() {
    local ns="$1" name="$2" conf="$3"
    bird -p -c "$conf" || die "bad BIRD config $conf"
    ip netns exec "$ns" bird -f -c "$conf" -s "$WORK/$name.ctl" -P "$WORK/$name.pid" \
        >"$WORK/$name.log" 2>&1 &
    PIDS+=("$!")
    wait_for "BIRD $name control socket" 10 birdc -s "$WORK/$name.ctl" show status
}

birdc_() {
    local name="$1"
    shift
    birdc -s "$WORK/$name.ctl" "$@"
}

bird_established() {
    birdc_ "$1" show protocols "$2" | grep -q Established
}

# bird_has_route NAME PREFIX: the route is in one of BIRD NAME's tables.
bird_has_route() {
    birdc_ "$1" show route "$2" ${3:+protocol "$3"} | grep -q "$2"
}

# bird_route_count NAME PREFIX N: BIRD NAME holds at least N routes for PREFIX.
bird_route_count() {
    local n
    n=$(birdc_ "$1" show route "$2" all | grep -c "BGP.origin" || true)
    ((n >= $3))
}

bird_lacks_route() {
    ! birdc_ "$1" show route "$2" | grep -q "$2"
}

# start_gobgpd NS HOSTNAME CONFIG: runs gobgpd inside NS with its own UTS
# namespace (so the FQDN capability carries HOSTNAME, not the build machine's).
start_gobgpd() {
    local ns="$1" host="$2" conf="$3"
    gobgpd -d -f "$conf" -t toml >/dev/null || die "bad GoBGP config $conf"
    ip netns exec "$ns" unshare --uts sh -c \
        "hostname '$host' && exec gobgpd -f '$conf' -t toml --api-hosts 127.0.0.1:50051 --pprof-disable -l info" \
        >"$WORK/gobgpd-$host.log" 2>&1 &
    PIDS+=("$!")
    wait_for "gobgpd $host API" 15 ip netns exec "$ns" gobgp global
}

gobgp_in() {
    local ns="$1"
    shift
    ip netns exec "$ns" gobgp "$@"
}

gobgp_established() {
    gobgp_in "$1" neighbor | grep -q "^ *$2 .*Establ"
}

gobgp_has_route() {
    gobgp_in "$1" neighbor "$2" adj-in -a "$3" "$4" | grep -q "$4"
}

# Common BIRD session knobs: quick connects so captures stay short.
BIRD_TIMERS='    connect delay time 1;
    connect retry time 2;
    error wait time 1, 4;'

###############################################################################
# 1. BIRD (AS 4200000001) <-> GoBGP (AS 65002), eBGP over IPv4, IPv4 + IPv6.
###############################################################################
scenario_bird_gobgp() {
    local pcap="$OUT/bird-gobgp-ebgp.pcap"
    log "scenario 1: bird <-> gobgp eBGP -> $pcap"
    make_pair 1
    addr "$NS_A" "$IF_A" 10.0.1.1/24
    addr "$NS_A" "$IF_A" fd00:1::1/64
    addr "$NS_B" "$IF_B" 10.0.1.2/24
    addr "$NS_B" "$IF_B" fd00:1::2/64

    cat >"$WORK/s1-bird.conf" <<EOF
router id 10.0.1.1;
hostname "bird-s1.tern.test";
log "$WORK/s1-bird.trace" all;
protocol device {}
# Two IPv4 blocks sharing one attribute set, one with its own set.
protocol static s1v4 {
  ipv4;
  route 10.11.1.0/26 blackhole { bgp_community.add((65000,100)); bgp_large_community.add((4200000001,1,1)); };
  route 10.11.1.64/26 blackhole { bgp_community.add((65000,100)); bgp_large_community.add((4200000001,1,1)); };
  route 10.11.2.0/24 blackhole {
    bgp_med = 50;
    bgp_path.prepend(65010); bgp_path.prepend(4200000099);
    bgp_community.add((65000,1)); bgp_community.add((65000,2));
    bgp_ext_community.add((rt,65000,100)); bgp_ext_community.add((ro,10.0.1.1,7));
    bgp_large_community.add((4200000001,7,8)); bgp_large_community.add((4200000001,9,10));
  };
}
protocol static s1v6 {
  ipv6;
  route fd00:11:1::/64 blackhole { bgp_community.add((65000,600)); };
  route fd00:11:2::/64 blackhole { bgp_community.add((65000,600)); };
  route fd00:11:3::/64 blackhole { bgp_med = 7; bgp_large_community.add((4200000001,6,6)); };
}
protocol bgp gobgp {
  local 10.0.1.1 as 4200000001;
  neighbor 10.0.1.2 as 65002;
$BIRD_TIMERS
  graceful restart on;
  graceful restart time 120;
  long lived graceful restart on;
  long lived stale time 3600;
  enable extended messages on;
  advertise hostname on;
  local role peer;
  ipv4 { import all; export all; add paths on; };
  ipv6 { import all; export all; add paths on; next hop address fd00:1::1; };
}
# Second session over IPv6 transport: IPv6 routes with IPv6 next hops, IPv4
# routes with IPv6 next hops (RFC 8950 extended next hop).
protocol bgp gobgp6 {
  local fd00:1::1 as 4200000001;
  neighbor fd00:1::2 as 65002;
$BIRD_TIMERS
  graceful restart on;
  ipv4 { import all; export none; extended next hop on; };
  ipv6 { import all; export all; };
}
EOF

    cat >"$WORK/s1-gobgp.toml" <<EOF
[global.config]
  as = 65002
  router-id = "10.0.1.2"
  local-address-list = ["10.0.1.2", "fd00:1::2"]

[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.0.1.1"
    peer-as = 4200000001
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 90
    keepalive-interval = 30
  [neighbors.transport.config]
    local-address = "10.0.1.2"
  [neighbors.graceful-restart.config]
    enabled = true
    restart-time = 90
    long-lived-enabled = true
  [neighbors.add-paths.config]
    receive = true
    send-max = 4
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
    [neighbors.afi-safis.long-lived-graceful-restart.config]
      enabled = true
      restart-time = 3600
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
    [neighbors.afi-safis.long-lived-graceful-restart.config]
      enabled = true
      restart-time = 3600

[[neighbors]]
  [neighbors.config]
    neighbor-address = "fd00:1::1"
    peer-as = 4200000001
  [neighbors.timers.config]
    connect-retry = 1
  [neighbors.transport.config]
    local-address = "fd00:1::2"
  [neighbors.graceful-restart.config]
    enabled = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
EOF

    start_tcpdump "$NS_A" "$IF_A" "$pcap"
    start_bird "$NS_A" s1bird "$WORK/s1-bird.conf"
    start_gobgpd "$NS_B" gobgp-s1 "$WORK/s1-gobgp.toml"
    wait_for "s1 BIRD established" 60 bird_established s1bird gobgp
    wait_for "s1 BIRD established over IPv6" 60 bird_established s1bird gobgp6
    wait_for "s1 GoBGP established" 30 gobgp_established "$NS_B" 10.0.1.1
    wait_for "s1 GoBGP established over IPv6" 30 gobgp_established "$NS_B" fd00:1::1
    wait_for "s1 GoBGP got BIRD's IPv4 routes" 20 gobgp_has_route "$NS_B" 10.0.1.1 ipv4 10.11.2.0/24
    wait_for "s1 GoBGP got BIRD's IPv6 routes" 20 gobgp_has_route "$NS_B" 10.0.1.1 ipv6 fd00:11:3::/64
    wait_for "s1 GoBGP got BIRD's IPv6 routes over IPv6" 20 gobgp_has_route "$NS_B" fd00:1::1 ipv6 fd00:11:3::/64

    # GoBGP originates: shared attribute set, an AS_SET, two ADD-PATH paths
    # for one prefix, IPv6 routes.
    local g=(gobgp_in "$NS_B" global rib)
    "${g[@]}" add -a ipv4 10.22.1.0/24 community 65002:1,65002:2 large-community 65002:1:1
    "${g[@]}" add -a ipv4 10.22.2.0/24 community 65002:1,65002:2 large-community 65002:1:1
    "${g[@]}" add -a ipv4 10.22.3.0/24 aspath "65020 65021 {65030,65031}" med 20 origin igp community no-export aggregator 65021:10.0.1.99
    "${g[@]}" add -a ipv4 10.22.4.0/24 identifier 1 med 10 community 65002:41
    "${g[@]}" add -a ipv4 10.22.4.0/24 identifier 2 med 20 community 65002:42
    "${g[@]}" add -a ipv6 fd00:22:1::/48 community 65002:6
    "${g[@]}" add -a ipv6 fd00:22:2::/48 med 5 large-community 65002:6:6
    wait_for "s1 BIRD got GoBGP IPv4 routes" 20 bird_has_route s1bird 10.22.3.0/24
    wait_for "s1 BIRD got GoBGP IPv6 routes" 20 bird_has_route s1bird fd00:22:2::/48 gobgp6

    # ROUTE-REFRESH in both directions.
    gobgp_in "$NS_B" neighbor 10.0.1.1 softresetin -a ipv4
    birdc_ s1bird reload in gobgp >/dev/null
    sleep 1

    # Withdrawals from both sides (IPv4 from GoBGP, IPv6 via MP_UNREACH from BIRD).
    "${g[@]}" del -a ipv4 10.22.2.0/24
    "${g[@]}" del -a ipv6 fd00:22:1::/48
    birdc_ s1bird disable s1v6 >/dev/null
    wait_for "s1 BIRD withdrew 10.22.2.0/24" 20 bird_lacks_route s1bird 10.22.2.0/24
    wait_for "s1 GoBGP lost BIRD's IPv6 routes" 20 sh -c \
        "! ip netns exec '$NS_B' gobgp neighbor 10.0.1.1 adj-in -a ipv6 | grep -q fd00:11:3::"

    # Administrative shutdown from GoBGP with a shutdown communication.
    # `shutdown` (deprecated alias of `disable`) is the form that puts the
    # --reason text into the NOTIFICATION in GoBGP 3.10; `disable --reason` does not.
    gobgp_in "$NS_B" neighbor 10.0.1.1 shutdown --reason "maintenance: going down" 2>/dev/null
    wait_for "s1 BIRD saw the session go down" 20 sh -c \
        "! birdc -s '$WORK/s1bird.ctl' show protocols gobgp | grep -q Established"
    stop_tcpdump "$pcap"
}

###############################################################################
# 2. BIRD <-> BIRD iBGP (AS 65001) over IPv6 with ADD-PATH, IPv4 via RFC 8950
#    extended next hop, enhanced route refresh (BoRR/EoRR).
###############################################################################
scenario_bird_bird_addpath() {
    local pcap="$OUT/bird-bird-addpath.pcap"
    log "scenario 2: bird <-> bird iBGP ADD-PATH -> $pcap"
    make_pair 2
    addr "$NS_A" "$IF_A" 10.0.2.1/24
    addr "$NS_A" "$IF_A" fd00:2::1/64
    addr "$NS_B" "$IF_B" 10.0.2.2/24
    addr "$NS_B" "$IF_B" fd00:2::2/64

    cat >"$WORK/s2-x.conf" <<EOF
router id 10.0.2.1;
log "$WORK/s2-x.trace" all;
protocol device {}
# Two sources for 10.33.1.0/26 and fd00:33:1::/64: ADD-PATH sends both.
protocol static pathA {
  ipv4;
  route 10.33.1.0/26 blackhole { bgp_community.add((65001,1)); bgp_local_pref = 200; };
  route 10.33.2.0/26 blackhole { bgp_community.add((65001,10)); };
  route 10.33.2.64/26 blackhole { bgp_community.add((65001,10)); };
  route 10.33.2.128/26 blackhole { bgp_community.add((65001,10)); };
}
protocol static pathB {
  ipv4;
  route 10.33.1.0/26 blackhole { bgp_community.add((65001,2)); bgp_med = 5; bgp_path.prepend(64999); };
}
protocol static pathA6 {
  ipv6;
  route fd00:33:1::/64 blackhole { bgp_large_community.add((65001,1,1)); };
  route fd00:33:2::/64 blackhole;
}
protocol static pathB6 {
  ipv6;
  route fd00:33:1::/64 blackhole { bgp_large_community.add((65001,2,2)); bgp_local_pref = 50; };
}
protocol bgp y {
  local fd00:2::1 as 65001;
  direct;
  neighbor fd00:2::2 as 65001;
$BIRD_TIMERS
  graceful restart on;
  graceful restart time 240;
  long lived graceful restart on;
  enable extended messages on;
  advertise hostname off;
  ipv4 { import all; export all; add paths on; extended next hop on; next hop self; gateway direct; };
  ipv6 { import all; export all; add paths on; next hop self; gateway direct; };
}
EOF

    cat >"$WORK/s2-y.conf" <<EOF
router id 10.0.2.2;
hostname "bird-s2-y";
log "$WORK/s2-y.trace" all;
protocol device {}
protocol static own4 {
  ipv4;
  route 10.34.1.0/26 blackhole;
}
protocol static own6 {
  ipv6;
  route fd00:34:1::/64 blackhole;
}
protocol bgp x {
  local fd00:2::2 as 65001;
  direct;
  neighbor fd00:2::1 as 65001;
$BIRD_TIMERS
  graceful restart on;
  long lived graceful restart on;
  enable extended messages on;
  advertise hostname on;
  ipv4 { import all; export all; add paths rx; extended next hop on; next hop self; gateway direct; };
  ipv6 { import all; export all; add paths rx; next hop self; gateway direct; };
}
EOF

    start_tcpdump "$NS_A" "$IF_A" "$pcap"
    start_bird "$NS_A" s2x "$WORK/s2-x.conf"
    start_bird "$NS_B" s2y "$WORK/s2-y.conf"
    wait_for "s2 X established" 60 bird_established s2x y
    wait_for "s2 Y established" 60 bird_established s2y x
    wait_for "s2 Y has both IPv4 paths" 20 bird_route_count s2y 10.33.1.0/26 2
    wait_for "s2 Y has both IPv6 paths" 20 bird_route_count s2y fd00:33:1::/64 2
    wait_for "s2 X has Y's routes" 20 bird_has_route s2x fd00:34:1::/64 y

    # Enhanced route refresh: X re-sends everything between BoRR and EoRR;
    # Y asks for a refresh with a plain ROUTE-REFRESH.
    birdc_ s2x reload out y >/dev/null
    birdc_ s2y reload in x >/dev/null
    sleep 1

    # Withdraw one of the two ADD-PATH paths, then an IPv6 prefix.
    birdc_ s2x disable pathB >/dev/null
    birdc_ s2x disable pathB6 >/dev/null
    wait_for "s2 Y lost the second IPv4 path" 20 sh -c \
        "! birdc -s '$WORK/s2y.ctl' show route 10.33.1.0/26 all | grep -q 64999"
    stop_tcpdump "$pcap"
}

###############################################################################
# 3. BIRD (AS 65004, AS4-capable, role provider) <-> BIRD (AS 65003, 2-octet only,
#    role customer); routes carry 4-octet ASNs: AS_TRANS + AS4_PATH, OTC.
###############################################################################
scenario_bird_as2() {
    local pcap="$OUT/bird-as2-as4path.pcap"
    log "scenario 3: 4-octet bird <-> 2-octet-only bird -> $pcap"
    make_pair 3
    addr "$NS_A" "$IF_A" 10.0.3.1/24
    addr "$NS_B" "$IF_B" 10.0.3.2/24

    cat >"$WORK/s3-p.conf" <<EOF
router id 10.0.3.1;
log "$WORK/s3-p.trace" all;
protocol device {}
protocol static p4 {
  ipv4;
  route 10.55.1.0/24 blackhole { bgp_path.prepend(4200000010); bgp_path.prepend(65011); bgp_community.add((65011,1)); };
  route 10.55.2.0/24 blackhole { bgp_path.prepend(4200000020); bgp_path.prepend(4200000021); bgp_large_community.add((4200000002,1,2)); };
  route 10.55.3.0/24 blackhole;
}
protocol bgp q {
  local 10.0.3.1 as 65004;
  neighbor 10.0.3.2 as 65003;
$BIRD_TIMERS
  local role provider;
  ipv4 { import all; export all; };
}
EOF

    cat >"$WORK/s3-q.conf" <<EOF
router id 10.0.3.2;
log "$WORK/s3-q.trace" all;
protocol device {}
protocol static q4 {
  ipv4;
  route 10.56.1.0/24 blackhole { bgp_path.prepend(65012); bgp_community.add((65003,7)); };
}
protocol bgp p {
  local 10.0.3.2 as 65003;
  neighbor 10.0.3.1 as 65004;
$BIRD_TIMERS
  enable as4 off;
  local role customer;
  ipv4 { import all; export all; };
}
EOF

    # Captured on "any": Linux cooked SLL2 link type rather than Ethernet.
    start_tcpdump "$NS_A" any "$pcap"
    start_bird "$NS_A" s3p "$WORK/s3-p.conf"
    start_bird "$NS_B" s3q "$WORK/s3-q.conf"
    wait_for "s3 P established" 60 bird_established s3p q
    wait_for "s3 Q established" 60 bird_established s3q p
    wait_for "s3 Q has P's routes" 20 bird_has_route s3q 10.55.2.0/24 p
    wait_for "s3 P has Q's routes" 20 bird_has_route s3p 10.56.1.0/24 q
    birdc_ s3p disable p4 >/dev/null
    wait_for "s3 Q lost P's routes" 20 sh -c \
        "! birdc -s '$WORK/s3q.ctl' show route 10.55.2.0/24 | grep -q 10.55.2.0"
    stop_tcpdump "$pcap"
}

###############################################################################
# 4. Calico-style iBGP mesh pair (AS 64512), ended by an administrative
#    shutdown with a shutdown communication (RFC 9003).
###############################################################################
scenario_shutdown() {
    local pcap="$OUT/shutdown-notification.pcap"
    log "scenario 4: calico-style mesh + shutdown communication -> $pcap"
    make_pair 4
    addr "$NS_A" "$IF_A" 10.0.4.1/24
    addr "$NS_B" "$IF_B" 10.0.4.2/24

    local me peer n
    for n in 1 2; do
        me=10.0.4.$n
        peer=10.0.4.$((3 - n))
        cat >"$WORK/s4-$n.conf" <<EOF
router id $me;
log "$WORK/s4-$n.trace" all;
protocol device {}
protocol static blocks {
  ipv4;
  route 10.244.$n.0/26 blackhole;
  route 10.244.$n.64/26 blackhole;
}
filter export_to_peers {
  if ( net ~ 10.244.0.0/16 ) then accept;
  reject;
}
template bgp bgp_template {
  description "Connection to BGP peer";
  local as 64512;
  direct;
  graceful restart;
  connect delay time 1;
  connect retry time 2;
  error wait time 1, 4;
  ipv4 { import all; export filter export_to_peers; next hop self; add paths on; };
}
protocol bgp Mesh_${peer//./_} from bgp_template {
  local $me as 64512;
  neighbor $peer as 64512;
}
EOF
    done

    start_tcpdump "$NS_A" "$IF_A" "$pcap"
    start_bird "$NS_A" s4n1 "$WORK/s4-1.conf"
    start_bird "$NS_B" s4n2 "$WORK/s4-2.conf"
    wait_for "s4 node1 established" 60 bird_established s4n1 Mesh_10_0_4_2
    wait_for "s4 node2 established" 60 bird_established s4n2 Mesh_10_0_4_1
    wait_for "s4 node2 has node1's blocks" 20 bird_has_route s4n2 10.244.1.64/26 Mesh_10_0_4_1
    wait_for "s4 node1 has node2's blocks" 20 bird_has_route s4n1 10.244.2.64/26 Mesh_10_0_4_2
    birdc_ s4n1 disable Mesh_10_0_4_2 '"maintenance: going down"' >/dev/null
    wait_for "s4 node2 saw the shutdown" 20 sh -c \
        "! birdc -s '$WORK/s4n2.ctl' show protocols Mesh_10_0_4_1 | grep -q Established"
    stop_tcpdump "$pcap"
}

scenario_bird_gobgp
scenario_bird_bird_addpath
scenario_bird_as2
scenario_shutdown

log "done"
