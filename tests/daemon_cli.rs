//! `ternd --check` against the shipped example configs and a broken file.
//! Needs no root: `--check` only reads and validates the file; a second
//! ternd refusing to start stops before it would need any.

use std::path::{Path, PathBuf};
use std::process::Command;

use tern_testkit::{ternd_bin, TempDir};

/// Every `examples/*.toml` (the schema reference included).
fn example_configs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

fn check(path: &Path) -> std::process::Output {
    Command::new(ternd_bin())
        .arg("--check")
        .arg("--config")
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", ternd_bin()))
}

#[test]
fn examples_are_shipped() {
    let names: Vec<String> = example_configs()
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for want in [
        "reference.toml",
        "mesh-node.toml",
        "route-reflector.toml",
        "tor-ebgp.toml",
        "ipip-cross-subnet.toml",
        "demo-host1.toml",
        "demo-host2.toml",
        "demo-host3.toml",
    ] {
        assert!(names.iter().any(|n| n == want), "examples/{want} missing: {names:?}");
    }
}

/// The config crate itself accepts every example (independent of the daemon).
#[test]
fn examples_validate_with_config_crate() {
    for path in example_configs() {
        if let Err(errors) = config::load(&path) {
            panic!("{} is invalid:\n{errors}", path.display());
        }
    }
}

#[test]
fn ternd_check_accepts_every_example() {
    for path in example_configs() {
        let out = check(&path);
        assert!(
            out.status.success(),
            "ternd --check --config {} failed ({}):\n{}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A broken file: exit status 1 and `FILE:LINE:COLUMN: KEY: MESSAGE` on stderr,
/// at the position the config crate reports.
#[test]
fn ternd_check_reports_file_line_column() {
    let dir = TempDir::new("cli");
    let text = "[bgp]\nasn = 64512\nrouter_id = \"192.168.1.11\"\nhold_time = 2\n";
    let path = dir.write("bad.toml", text);
    let errors = match config::parse(text, &path.display().to_string()) {
        Ok(_) => panic!("the config crate accepted hold_time = 2"),
        Err(e) => e,
    };
    let first = &errors.0[0];
    assert_eq!((first.line, first.column), (4, 13), "config crate position");

    let out = check(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "exit status; stderr:\n{stderr}");
    let want = format!("{}:4:13: bgp.hold_time:", path.display());
    assert!(
        stderr.lines().any(|l| l.starts_with(&want)),
        "stderr lacks a line starting with {want:?}:\n{stderr}"
    );
}

/// A TOML syntax error is located too, and a missing file is an error, not a panic.
#[test]
fn ternd_check_reports_syntax_error_and_missing_file() {
    let dir = TempDir::new("cli");
    let path = dir.write("syntax.toml", "[bgp]\nasn = 64512\nrouter_id = \n");
    let out = check(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "exit status; stderr:\n{stderr}");
    let want = format!("{}:3:", path.display());
    assert!(stderr.contains(&want), "stderr lacks {want:?}:\n{stderr}");
    assert!(!stderr.contains("panicked"), "ternd panicked:\n{stderr}");

    let missing = dir.path().join("missing.toml");
    let out = check(&missing);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "missing file accepted");
    assert!(
        stderr.contains("missing.toml"),
        "stderr does not name the file:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "ternd panicked:\n{stderr}");
}

#[test]
fn a_bad_log_filter_is_refused_naming_where_it_came_from() {
    let config = example_configs().into_iter().next().expect("an example config");
    let run = |flag: Option<&str>, env: Option<&str>| {
        let mut cmd = Command::new(ternd_bin());
        cmd.arg("--check").arg("--config").arg(&config).env_remove("RUST_LOG");
        if let Some(f) = flag {
            cmd.arg("--log-level").arg(f);
        }
        if let Some(e) = env {
            cmd.env("RUST_LOG", e);
        }
        let out = cmd.output().unwrap_or_else(|e| panic!("run {}: {e}", ternd_bin()));
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, stderr) = run(Some("tern=loud"), None);
    assert_eq!(code, Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("--log-level \"tern=loud\""), "stderr:\n{stderr}");
    let (code, stderr) = run(None, Some("tern=debug,fib_sync=verbose"));
    assert_eq!(code, Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("RUST_LOG"), "stderr:\n{stderr}");
    for good in ["info", "tern=debug,warn", "fib_sync::sync=trace"] {
        let (code, stderr) = run(Some(good), Some("nonsense=="));
        assert_eq!(code, Some(0), "{good}: the flag wins over RUST_LOG; stderr:\n{stderr}");
    }
}

/// Runs `ternd` with `node`'s configuration, its stderr in a file; with
/// `journal` set, `JOURNAL_STREAM` names that file as systemd names the
/// journal stream. Checks it exits 1 having written one line, and returns it.
fn second_ternd_refusal(node: &tern_testkit::inproc::Node, journal: bool) -> String {
    use std::os::unix::fs::MetadataExt;
    let err_path = node.dir.path().join("second.err");
    let err = std::fs::File::create(&err_path).expect("stderr file");
    let meta = err.metadata().expect("stat");
    let mut cmd = Command::new(ternd_bin());
    cmd.arg("--config").arg(&node.config_path).stderr(err);
    match journal {
        true => cmd.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino())),
        false => cmd.env_remove("JOURNAL_STREAM"),
    };
    let status = cmd.status().unwrap_or_else(|e| panic!("run {}: {e}", ternd_bin()));
    let stderr = std::fs::read_to_string(&err_path).expect("stderr");
    assert_eq!(status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "printed once: {stderr}");
    lines[0].to_string()
}

/// A second `ternd` with the running one's configuration exits 1 with one
/// line naming the control socket, and the running one keeps answering.
#[test]
fn a_second_ternd_process_refuses_with_one_line() {
    let node = tern_testkit::inproc::Node::start("");
    let line = second_ternd_refusal(&node, false);
    let socket = node.control_socket().display().to_string();
    let want = format!("control socket {socket}: a running daemon answers on it");
    assert!(line.contains(&want), "{line}");
    assert_eq!(node.status().router_id.to_string(), tern_testkit::inproc::ROUTER_ID);
}

/// Under systemd the same refusal is one `<3>` (error) line without a
/// timestamp, so `journalctl -p err` shows it.
#[test]
fn under_systemd_the_refusal_is_an_error_priority_line() {
    let node = tern_testkit::inproc::Node::start("");
    let line = second_ternd_refusal(&node, true);
    assert!(line.starts_with("<3>ERROR ternd: control socket "), "{line}");
}

/// The `ternctl` binary's commands that change things and `show peer NAME`,
/// against an in-process daemon: what an operator types.
#[test]
fn ternctl_show_peer_disable_and_a_refused_reload() {
    use tern_testkit::inproc::{ibgp_peer, Node, ASN};
    let node = Node::start(&ibgp_peer("h2", "127.0.0.2"));
    let _h2 = node.connect("127.0.0.2", ASN).expect("h2");
    node.wait_state("h2", "Established");
    let ternctl = |args: &[&str]| {
        let out = Command::new(tern_testkit::ternctl_bin())
            .arg("--socket")
            .arg(node.control_socket())
            .args(args)
            .output()
            .expect("run ternctl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    let (code, shown) = ternctl(&["show", "peer", "h2"]);
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("state              Established"), "{shown}");
    assert!(shown.contains("capability         route refresh (RFC 2918)"), "{shown}");
    assert!(shown.contains("keepalive_time     30"), "{shown}");
    let (code, done) = ternctl(&["peer", "disable", "h2", "--message", "maintenance"]);
    assert_eq!((code, done.trim()), (Some(0), "h2 disabled: Idle"));
    let (code, refused) = ternctl(&["peer", "refresh", "h2", "--in"]);
    assert_eq!(code, Some(2), "not Established: {refused}");
    std::fs::write(&node.config_path, "[bgp]\nasn = 0\nrouter_id = \"192.168.1.11\"\n").expect("write");
    let (code, errors) = ternctl(&["reload"]);
    assert_eq!(code, Some(1), "{errors}");
    assert!(errors.contains("tern.toml:2:7: bgp.asn"), "{errors}");
    assert_eq!(node.peer("h2").name, "h2", "ternd runs on unchanged");
}
