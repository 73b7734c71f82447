//! Preconditions (root, installed tools) and running commands: outputs,
//! failures that carry everything needed to see why, signals, polling.

use std::fmt;
use std::fs;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// True when the effective uid is 0 (read from /proc, no libc needed).
pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// True when `tool` is an executable file somewhere on PATH (or /usr/sbin, /sbin).
pub fn have_tool(tool: &str) -> bool {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
        .filter(|d| !d.is_empty())
        .any(|d| Path::new(d).join(tool).is_file());
    found
}

/// Checks that we are root and every tool is installed; prints
/// `skipped: TEST: WHY` and returns false otherwise (the test then returns).
pub fn require(test: &str, tools: &[&str]) -> bool {
    if !is_root() {
        println!("skipped: {test}: needs root");
        return false;
    }
    for tool in ["ip"].iter().chain(tools) {
        if !have_tool(tool) {
            println!("skipped: {test}: {tool} not installed");
            return false;
        }
    }
    true
}

/// A command that could not run or exited non-zero, with everything needed to see why.
#[derive(Debug)]
pub struct CmdFailed {
    pub command: String,
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for CmdFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(s) => write!(f, "`{}` failed ({s})", self.command)?,
            None => write!(f, "`{}` could not be started", self.command)?,
        }
        if !self.stdout.trim().is_empty() {
            write!(f, "\n--- stdout\n{}", self.stdout.trim_end())?;
        }
        if !self.stderr.trim().is_empty() {
            write!(f, "\n--- stderr\n{}", self.stderr.trim_end())?;
        }
        Ok(())
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion; Ok(stdout) when it exits 0.
pub fn run(cmd: &mut Command) -> Result<String, CmdFailed> {
    let command = describe(cmd);
    match cmd.stdin(Stdio::null()).output() {
        Ok(Output { status, stdout, stderr }) => {
            let stdout = String::from_utf8_lossy(&stdout).into_owned();
            let stderr = String::from_utf8_lossy(&stderr).into_owned();
            if status.success() {
                Ok(stdout)
            } else {
                Err(CmdFailed {
                    command,
                    status: Some(status),
                    stdout,
                    stderr,
                })
            }
        }
        Err(e) => Err(CmdFailed {
            command,
            status: None,
            stdout: String::new(),
            stderr: e.to_string(),
        }),
    }
}

/// Runs `cmd`, panicking with its output when it fails.
pub fn must(cmd: &mut Command) -> String {
    run(cmd).unwrap_or_else(|e| panic!("{e}"))
}

/// `prog args...` as a Command.
pub fn command(prog: &str, args: &[&str]) -> Command {
    let mut c = Command::new(prog);
    c.args(args);
    c
}

/// Sends `signal` (e.g. "TERM", "KILL") to one process by PID.
pub fn signal(pid: u32, signal: &str) {
    // The process may have exited already; that is fine.
    let _ = run(&mut command("kill", &[&format!("-{signal}"), &pid.to_string()]));
}

/// Waits for `child` up to `timeout`, polling; None if it is still running.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => return None,
            Err(_) => return None,
        }
    }
}

/// Stops `child`: SIGTERM, up to `grace` to exit, then SIGKILL; always reaps it.
pub fn stop_child(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    signal(child.id(), "TERM");
    if let Some(status) = wait_child(child, grace) {
        return Some(status);
    }
    let _ = child.kill();
    child.wait().ok()
}

/// Polls `cond` every 100 ms until it holds; returns the time it took.
/// Panics naming `what` when `timeout` passes first.
pub fn wait_until(timeout: Duration, what: &str, cond: impl FnMut() -> bool) -> Duration {
    wait_until_diag(timeout, what, cond, String::new)
}

/// [`wait_until`] that adds `diag()` (e.g. the current routes) to the panic message.
pub fn wait_until_diag(
    timeout: Duration,
    what: &str,
    mut cond: impl FnMut() -> bool,
    diag: impl FnOnce() -> String,
) -> Duration {
    let start = Instant::now();
    loop {
        if cond() {
            return start.elapsed();
        }
        if start.elapsed() >= timeout {
            panic!("timed out after {timeout:?} waiting for: {what}\n{}", diag());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
