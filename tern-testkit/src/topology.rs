//! Topologies: hosts on L2 segments behind a router, Calico-style pods, and
//! a `tunl0` stand-in.

use std::net::Ipv4Addr;

use crate::netns::{veth, KernelRoute, Netns};
use crate::process::CmdFailed;

/// One Kubernetes host: a namespace whose `eth0` is on a segment.
pub struct Host {
    pub ns: Netns,
    /// 1-based host number: address 192.168.SUBNET.(10+index), pod block 10.244.index.0/26.
    pub index: u8,
    pub subnet: u8,
    pub addr: Ipv4Addr,
}

impl Host {
    /// The host's pod block, e.g. "10.244.1.0/26".
    pub fn block(&self) -> String {
        format!("10.244.{}.0/26", self.index)
    }

    /// The gateway on the host's segment (the router namespace's address).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(192, 168, self.subnet, 1)
    }

    /// Adds a veth named `tunl0` (standing in for the IPIP device, which this
    /// kernel lacks) with address 10.244.INDEX.1/32, its peer end in `other`.
    pub fn add_tunl0(&self, other: &Netns) {
        let peer = &format!("tl{}", self.index);
        veth(&self.ns, "tunl0", other, peer);
        other.ip(&format!("link set {peer} up"));
        self.ns.ip(&format!("addr add 10.244.{}.1/32 dev tunl0", self.index));
        self.ns.ip("link set tunl0 up");
    }

    /// Adds pod number `k` (0-based) the Calico way: a namespace with `eth0`
    /// 10.244.INDEX.(2+k)/32 and a default route via 169.254.1.1, the host end
    /// `cali<INDEX><k>` with proxy ARP and a /32 route to the pod.
    pub fn add_pod(&self, k: u8) -> Pod {
        self.add_pod_at(
            Ipv4Addr::new(10, 244, self.index, 2 + k),
            &format!("cali{}x{k}", self.index),
        )
    }

    /// A pod with any address (e.g. one borrowed from another host's block)
    /// and host-side interface `cali`, wired as [`Host::add_pod`] does; its
    /// /32 route has `ip route`'s default protocol, 3 ("boot"), as Felix's.
    pub fn add_pod_at(&self, addr: Ipv4Addr, cali: &str) -> Pod {
        let ns = Netns::new("p");
        veth(&ns, "eth0", &self.ns, cali);
        ns.ip(&format!("addr add {addr}/32 dev eth0"));
        ns.ip("link set eth0 up");
        ns.ip("route add 169.254.1.1 dev eth0 scope link");
        ns.ip("route add default via 169.254.1.1 dev eth0");
        self.ns.ip(&format!("link set {cali} up"));
        self.ns.sysctl(&format!("net.ipv4.conf.{cali}.proxy_arp"), "1");
        self.ns.sysctl(&format!("net.ipv4.neigh.{cali}.proxy_delay"), "0");
        self.ns.ip(&format!("route add {addr}/32 dev {cali}"));
        Pod { ns, addr }
    }

    /// Kernel routes of this host matching `filter`.
    pub fn routes(&self, filter: &str) -> Vec<KernelRoute> {
        self.ns.routes(filter)
    }
}

/// A pod namespace with its address.
pub struct Pod {
    pub ns: Netns,
    pub addr: Ipv4Addr,
}

impl Pod {
    /// One ping to `dst` with a 2 s timeout; Ok(output) when answered.
    pub fn ping(&self, dst: Ipv4Addr) -> Result<String, CmdFailed> {
        self.ns.try_exec(&["ping", "-c", "1", "-W", "2", &dst.to_string()])
    }
}

/// Hosts on one or two L2 segments. A switch namespace holds one bridge per
/// subnet; a router namespace has 192.168.S.1 on every segment and forwards
/// between them; every host gets a default route via its segment's router.
pub struct Topology {
    // Field order is drop order: hosts first, then router and switch.
    pub hosts: Vec<Host>,
    pub router: Netns,
    pub switch: Netns,
}

impl Topology {
    /// `n` hosts on 192.168.1.0/24: 192.168.1.11, .12, ...
    pub fn single_segment(n: usize) -> Topology {
        Topology::subnets(&vec![1; n])
    }

    /// One host per entry, entry = its subnet (1 or 2), e.g. `[1, 1, 2]` puts
    /// hosts 1 and 2 on 192.168.1.0/24 and host 3 (192.168.2.13) on 192.168.2.0/24.
    pub fn subnets(subnets: &[u8]) -> Topology {
        assert!(subnets.len() < 200, "too many hosts");
        let switch = Netns::new("sw");
        let router = Netns::new("rt");
        router.sysctl("net.ipv4.ip_forward", "1");
        let mut used: Vec<u8> = subnets.to_vec();
        used.push(1);
        used.sort_unstable();
        used.dedup();
        for s in &used {
            switch.ip(&format!("link add br{s} type bridge"));
            switch.ip(&format!("link set br{s} up"));
            let sw_end = format!("r{s}");
            veth(&router, &format!("eth{s}"), &switch, &sw_end);
            switch.ip(&format!("link set {sw_end} master br{s} up"));
            router.ip(&format!("addr add 192.168.{s}.1/24 dev eth{s}"));
            router.ip(&format!("link set eth{s} up"));
        }
        let mut hosts = Vec::new();
        for (i, &s) in subnets.iter().enumerate() {
            let index = u8::try_from(i + 1).expect("host index");
            let ns = Netns::new(&format!("h{index}"));
            let addr = Ipv4Addr::new(192, 168, s, 10 + index);
            let sw_end = format!("h{index}");
            veth(&ns, "eth0", &switch, &sw_end);
            switch.ip(&format!("link set {sw_end} master br{s} up"));
            ns.ip(&format!("addr add {addr}/24 dev eth0"));
            ns.ip("link set eth0 up");
            ns.ip(&format!("route add default via 192.168.{s}.1 dev eth0"));
            ns.sysctl("net.ipv4.ip_forward", "1");
            hosts.push(Host {
                ns,
                index,
                subnet: s,
                addr,
            });
        }
        Topology { hosts, router, switch }
    }

    /// Host number `i` (1-based).
    pub fn host(&self, i: usize) -> &Host {
        &self.hosts[i - 1]
    }

    /// Gives every host a `tunl0` stand-in (peer ends in the switch namespace).
    pub fn add_tunl0_everywhere(&self) {
        for h in &self.hosts {
            h.add_tunl0(&self.switch);
        }
    }
}
