//! Packaging: the systemd unit's hardening, and the Debian package built by
//! `examples/build-deb.sh` installed with `dpkg -i` into a scratch root
//! (nothing is installed on the host, nothing is started). Needs root,
//! cargo-deb and dpkg for the package; systemd-analyze for the unit.

use std::path::Path;
use std::process::Command;

use tern_testkit::*;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The "Overall exposure level" `systemd-analyze security` gives a unit file.
fn exposure(unit: &Path) -> f32 {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit)
        .output()
        .expect("run systemd-analyze");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no overall level in:\n{text}{}", String::from_utf8_lossy(&out.stderr)));
    line.split(':')
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("unreadable level: {line}"))
}

#[test]
fn the_unit_is_rated_at_most_3_by_systemd_analyze_security() {
    if !have_tool("systemd-analyze") {
        println!("skipped: systemd-analyze not installed");
        return;
    }
    let level = exposure(&Path::new(REPO).join("examples/ternd.service"));
    println!("systemd-analyze security: {level}");
    assert!(level <= 3.0, "exposure {level} > 3.0");
    // The measure can fail: the unhardened unit of the issue rated 6.7.
    let dir = TempDir::new("unit");
    let bare = dir.write(
        "bare.service",
        "[Service]\nExecStart=/usr/sbin/ternd\nAmbientCapabilities=CAP_NET_ADMIN\n",
    );
    assert!(exposure(&bare) > 3.0);
}

/// Section names of a little-endian ELF64 file (empty if it is not one).
fn elf_sections(elf: &[u8]) -> Vec<String> {
    let num = |at: usize, len: usize| -> usize {
        elf.get(at..at + len)
            .map_or(0, |b| b.iter().rev().fold(0usize, |acc, x| acc << 8 | *x as usize))
    };
    if elf.get(..5) != Some(b"\x7fELF\x02") {
        return Vec::new();
    }
    let (shoff, shentsize, shnum, shstrndx) = (num(0x28, 8), num(0x3a, 2), num(0x3c, 2), num(0x3e, 2));
    let header = |i: usize| shoff + i * shentsize;
    let strtab = num(header(shstrndx) + 0x18, 8);
    (0..shnum)
        .map(|i| {
            let name = strtab + num(header(i), 4);
            let bytes = elf.get(name..).unwrap_or_default();
            let end = bytes.iter().position(|b| *b == 0).unwrap_or(0);
            String::from_utf8_lossy(&bytes[..end]).into_owned()
        })
        .collect()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_debian_package_builds_and_installs_with_dpkg() {
    if !require(
        "the_debian_package_builds_and_installs_with_dpkg",
        &["cargo-deb", "dpkg", "dpkg-deb", "gzip", "strip"],
    ) {
        return;
    }
    let built = run(Command::new("bash").arg("examples/build-deb.sh").current_dir(REPO));
    let deb = Path::new(REPO).join(built.trim());
    let root = TempDir::new("debroot");
    let r = root.path();
    std::fs::create_dir_all(r.join("var/lib/dpkg/updates")).unwrap();
    std::fs::create_dir_all(r.join("var/lib/dpkg/info")).unwrap();
    std::fs::write(r.join("var/lib/dpkg/status"), "").unwrap();
    let admin = r.join("var/lib/dpkg");
    // libc6 is not in the scratch root's database: its dependency is forced.
    run(Command::new("dpkg")
        .arg(format!("--instdir={}", r.display()))
        .arg(format!("--admindir={}", admin.display()))
        .args(["--force-depends", "--force-not-root", "-i"])
        .arg(&deb));
    let status = run(Command::new("dpkg")
        .arg(format!("--admindir={}", admin.display()))
        .args(["-s", "tern"]));
    assert!(status.contains("Status: install ok installed"), "{status}");
    assert!(status.contains("/etc/tern/tern.toml"), "a conffile: {status}");

    // The installed daemon validates the installed configuration.
    let check = run(Command::new(r.join("usr/sbin/ternd"))
        .arg("--check")
        .arg("--config")
        .arg(r.join("etc/tern/tern.toml")));
    assert!(check.contains("configuration is valid"), "{check}");
    run(Command::new(r.join("usr/bin/ternctl")).arg("--version"));
    // Shipped without debug info; the build tree keeps it (for profiling).
    for bin in ["usr/sbin/ternd", "usr/bin/ternctl"] {
        let sections = elf_sections(&std::fs::read(r.join(bin)).unwrap());
        assert!(sections.iter().any(|s| s == ".text"), "{bin}: {sections:?}");
        assert!(
            !sections.iter().any(|s| s == ".debug_info" || s == ".debug_line"),
            "{bin}: {sections:?}"
        );
    }
    let built = elf_sections(&std::fs::read(Path::new(REPO).join("target/release/ternd")).unwrap());
    assert!(built.iter().any(|s| s == ".debug_info"), "{built:?}");
    for (page, title) in [
        ("usr/share/man/man8/ternd.8.gz", ".TH ternd 8"),
        ("usr/share/man/man8/ternctl.8.gz", ".TH ternctl 8"),
        ("usr/share/man/man5/tern.toml.5.gz", ".TH TERN.TOML 5"),
    ] {
        let text = run(Command::new("gzip").arg("-dc").arg(r.join(page)));
        assert!(text.contains(title), "{page}: {}", &text[..text.len().min(300)]);
    }
    let bash = std::fs::read_to_string(r.join("usr/share/bash-completion/completions/ternctl")).unwrap();
    assert!(bash.contains("complete -F _ternctl"), "bash completion");
    assert!(r.join("usr/share/zsh/vendor-completions/_ternctl").exists());
    assert!(r.join("usr/share/fish/vendor_completions.d/ternctl.fish").exists());
    let unit = std::fs::read_to_string(r.join("lib/systemd/system/ternd.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/sbin/ternd"), "{unit}");
}

#[test]
fn the_kubernetes_manifest_carries_a_valid_config_and_mounts_its_sockets() {
    let manifest = std::fs::read_to_string(Path::new(REPO).join("examples/kubernetes/ternd-daemonset.yaml")).unwrap();
    // The ConfigMap's block scalar: the lines after `tern.toml: |`, indented by 4.
    let start = manifest.find("  tern.toml: |\n").expect("the config in the ConfigMap") + "  tern.toml: |\n".len();
    let template: String = manifest[start..]
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    assert!(
        template.contains("@NODE_IP@"),
        "the init container fills in the router id"
    );
    let dir = TempDir::new("k8s");
    let file = dir.write("tern.toml", &template.replace("@NODE_IP@", "192.168.1.11"));
    let cfg = config::load(&file).unwrap_or_else(|e| panic!("{e}\n{template}"));
    let bird = cfg
        .control
        .bird_socket
        .expect("calico-node's readiness check needs the BIRD socket");
    let socket_dir = bird.parent().expect("a directory").to_string_lossy().into_owned();
    assert!(
        manifest.contains(&format!("mountPath: {socket_dir}")),
        "{socket_dir} is mounted"
    );
    assert!(manifest.contains("hostNetwork: true"));
    assert!(manifest.contains("NET_ADMIN"));
}
