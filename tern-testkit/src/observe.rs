//! Evidence gathered while a test breaks something: `ping` from a pod (what
//! was lost, the longest gap) and `ip -o monitor route` in a namespace (was
//! a route ever deleted). Both run in the background and are killed by PID.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{signal, wait_child, wait_until, Netns, Pod};

/// Lines of a child's stdout, collected by a thread as they come.
struct Collected {
    child: Option<Child>,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
    reader: Option<JoinHandle<()>>,
}

impl Collected {
    fn spawn(mut child: Child) -> Collected {
        let out = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((Instant::now(), line));
            }
        });
        Collected {
            child: Some(child),
            lines,
            reader: Some(reader),
        }
    }

    fn lines(&self) -> Vec<(Instant, String)> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops the child with `sig` and waits for it and its reader.
    fn stop(&mut self, sig: &str) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        signal(child.id(), sig);
        let status = wait_child(&mut child, Duration::from_secs(5));
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        status
    }
}

impl Drop for Collected {
    fn drop(&mut self) {
        self.stop("KILL");
    }
}

/// `ping -n -D -i INTERVAL` from a pod, in the background until stopped.
pub struct Pinger {
    pub what: String,
    started: Instant,
    out: Collected,
}

/// What a stopped [`Pinger`] saw.
#[derive(Debug)]
pub struct PingReport {
    pub transmitted: u32,
    pub received: u32,
    /// Sequence numbers never answered (not counting `in_flight`).
    pub lost: Vec<u32>,
    /// The last request, sent just before SIGINT stopped ping, if it had no
    /// answer yet: ping was stopped, not the network.
    pub in_flight: Option<u32>,
    /// The longest time without a reply (ping's `-D` timestamps).
    pub max_gap: Duration,
    /// How long ping ran.
    pub ran: Duration,
    pub summary: String,
}

impl Pinger {
    /// Starts pinging `dst` every `interval` seconds and returns once replies flow.
    pub fn start(pod: &Pod, dst: Ipv4Addr, interval: &str) -> Pinger {
        let child = pod
            .ns
            .cmd("ping")
            .args(["-n", "-D", "-i", interval, &dst.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ping");
        let p = Pinger {
            what: format!("ping {} -> {dst}", pod.addr),
            started: Instant::now(),
            out: Collected::spawn(child),
        };
        p.wait_more_than(0, 1);
        p
    }

    /// Replies so far.
    pub fn replies(&self) -> usize {
        self.out
            .lines()
            .iter()
            .filter(|(_, l)| l.contains(" bytes from "))
            .count()
    }

    /// Waits (10 s at most) for `n` more replies than `after`; returns the count.
    pub fn wait_more_than(&self, after: usize, n: usize) -> usize {
        wait_until(
            Duration::from_secs(10),
            &format!("{}: {n} more replies after {after}", self.what),
            || self.replies() >= after + n,
        );
        self.replies()
    }

    /// SIGINT (ping then prints its summary), and the per-sequence result.
    pub fn stop(mut self) -> PingReport {
        self.out
            .stop("INT")
            .unwrap_or_else(|| panic!("{} did not stop", self.what));
        let ran = self.started.elapsed();
        let lines = self.out.lines();
        let replies: Vec<&str> = lines
            .iter()
            .map(|(_, l)| l.as_str())
            .filter(|l| l.contains(" bytes from "))
            .collect();
        let answered: BTreeSet<u32> = replies
            .iter()
            .filter_map(|l| l.split("icmp_seq=").nth(1))
            .filter_map(|s| s.split_whitespace().next()?.parse().ok())
            .collect();
        let summary = lines
            .iter()
            .map(|(_, l)| l.clone())
            .find(|l| l.contains("packets transmitted"))
            .unwrap_or_else(|| panic!("{}: no summary in its output", self.what));
        let number = |i: usize| -> u32 {
            summary
                .split(", ")
                .nth(i)
                .and_then(|s| s.split_whitespace().next())
                .and_then(|w| w.parse().ok())
                .unwrap_or_else(|| panic!("{}: bad summary {summary}", self.what))
        };
        let (transmitted, received) = (number(0), number(1));
        let mut lost: Vec<u32> = (1..=transmitted).filter(|s| !answered.contains(s)).collect();
        let in_flight = (lost.last() == Some(&transmitted)).then(|| lost.pop()).flatten();
        // Reply lines start with "[SECONDS.MICROS]" (-D).
        let stamps: Vec<f64> = replies
            .iter()
            .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
            .collect();
        let max_gap = stamps
            .windows(2)
            .map(|w| Duration::from_secs_f64((w[1] - w[0]).max(0.0)))
            .max()
            .unwrap_or_default();
        PingReport {
            transmitted,
            received,
            lost,
            in_flight,
            max_gap,
            ran,
            summary,
        }
    }
}

/// `ip -o monitor route` inside a namespace, every line recorded with the
/// moment it was read.
pub struct RouteMonitor {
    /// Where it watches, for messages.
    pub label: String,
    out: Collected,
}

impl RouteMonitor {
    /// Starts the monitor and returns once it is seen to report (a marker
    /// route added and removed until it shows: it subscribes some time after
    /// the spawn).
    pub fn start(ns: &Netns, label: &str) -> RouteMonitor {
        let child = ns
            .cmd("ip")
            .args(["-o", "monitor", "route"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ip monitor");
        let m = RouteMonitor {
            label: label.to_string(),
            out: Collected::spawn(child),
        };
        let marker = "route add blackhole 192.0.2.77/32 proto static";
        wait_until(Duration::from_secs(10), "ip monitor reporting", || {
            let _ = ns.try_ip(marker);
            let _ = ns.try_ip(&marker.replacen("add", "del", 1));
            !m.about("192.0.2.77").is_empty()
        });
        m
    }

    /// Every line about `dst` (e.g. "10.244.1.0/26"; a /32 also matches its address).
    pub fn about(&self, dst: &str) -> Vec<(Instant, String)> {
        let bare = dst.trim_end_matches("/32");
        self.out
            .lines()
            .into_iter()
            .filter(|(_, l)| l.split_whitespace().any(|w| w == dst || w == bare))
            .collect()
    }

    /// The `Deleted ...` lines for `dst`.
    pub fn deletions(&self, dst: &str) -> Vec<(Instant, String)> {
        self.about(dst)
            .into_iter()
            .filter(|(_, l)| l.starts_with("Deleted"))
            .collect()
    }

    /// Everything seen about `dst`, for messages.
    pub fn show(&self, dst: &str) -> String {
        let lines: Vec<String> = self.about(dst).iter().map(|(_, l)| format!("  {l}")).collect();
        format!("ip monitor in {} about {dst}:\n{}", self.label, lines.join("\n"))
    }
}
