//! `mender-bridge sim` through the binary: its management API has no authentication, so a
//! non-loopback `--listen` address is refused unless `--allow-remote` says it is meant.
#![cfg(feature = "sim")]

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_mender-bridge");

/// A running `sim`, killed when dropped.
struct Sim {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(listen: &str, extra: &[&str], state: &std::path::Path) -> Sim {
    let mut child = Command::new(BIN)
        .args(["sim", "--listen", listen, "--state"])
        .arg(state)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mender-bridge sim");
    let (tx, lines) = mpsc::channel();
    for out in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    Sim { child, lines }
}

impl Sim {
    /// Waits up to 20 s for the process to exit: its status and everything it printed.
    fn exit(&mut self) -> (Option<std::process::ExitStatus>, String) {
        let mut out = String::new();
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // The reader threads end at EOF; collect what they sent.
                std::thread::sleep(Duration::from_millis(100));
                out.extend(self.lines.try_iter().map(|l| l + "\n"));
                return (Some(status), out);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        out.extend(self.lines.try_iter().map(|l| l + "\n"));
        (None, out)
    }

    /// Waits up to 20 s for a line containing `want`: everything printed until then.
    fn wait_for(&mut self, want: &str) -> Result<String, String> {
        let mut out = String::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    out.push_str(&line);
                    out.push('\n');
                    if line.contains(want) {
                        return Ok(out);
                    }
                }
                Err(_) => break,
            }
        }
        Err(out)
    }
}

#[test]
fn a_non_loopback_listen_address_needs_allow_remote() {
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let state = tempfile::tempdir().expect("tempdir");
        let mut sim = start(listen, &[], state.path());
        let (status, out) = sim.exit();
        let status = status.unwrap_or_else(|| panic!("{listen}: still running:\n{out}"));
        assert!(!status.success(), "{listen}: {out}");
        assert!(out.contains("--allow-remote"), "{listen}: {out}");
        assert!(out.contains("no authentication"), "{listen}: {out}");
        // Refused before anything was set up.
        let made: Vec<_> = std::fs::read_dir(state.path())
            .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(made.is_empty(), "{listen}: state written: {made:?}");
    }
}

#[test]
fn allow_remote_and_loopback_addresses_start() {
    let state = tempfile::tempdir().expect("tempdir");
    let mut sim = start("0.0.0.0:0", &["--allow-remote"], state.path());
    let out = sim.wait_for("listening on").unwrap_or_else(|out| {
        panic!("--allow-remote did not start:\n{out}");
    });
    assert!(out.contains("no authentication"), "a warning: {out}");
    drop(sim);

    let state = tempfile::tempdir().expect("tempdir");
    let mut sim = start("127.0.0.1:0", &[], state.path());
    let out = sim
        .wait_for("listening on")
        .unwrap_or_else(|out| panic!("loopback did not start:\n{out}"));
    assert!(!out.contains("allow-remote"), "{out}");
}
