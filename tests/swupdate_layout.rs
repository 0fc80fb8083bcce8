//! The Rust side's SWUpdate IPC layouts against the installed C headers
//! (`/usr/include/network_ipc.h`, `progress_ipc.h` from libswupdate-dev): a tiny C program
//! prints every offset and size the backend uses (gcc, `offsetof`), for this machine's
//! ABI; each is compared with the constants in `backends/src/swupdate/abi.rs`. The 32-bit
//! layout (3104-byte messages) is checked against the same headers compiled with `gcc -m32`.
#![cfg(feature = "swupdate")]

use std::collections::BTreeMap;
use std::process::Command;

use mender_bridge_backends::swupdate::abi::{self, Abi};

const PROBE: &str = r#"
#include <stdio.h>
#include <stddef.h>
#include <sys/types.h>
#include <network_ipc.h>
#include <progress_ipc.h>
#define O(name, T, f) printf("%s %zu %zu\n", name, offsetof(T, f), sizeof(((T *)0)->f))
int main(void) {
  printf("ipc_message 0 %zu\n", sizeof(ipc_message));
  printf("swupdate_request 0 %zu\n", sizeof(struct swupdate_request));
  printf("progress_msg 0 %zu\n", sizeof(struct progress_msg));
  printf("IPC_MAGIC %d 0\n", IPC_MAGIC);
  printf("SWUPDATE_API_VERSION %d 0\n", SWUPDATE_API_VERSION);
  printf("REQ_INSTALL %d 0\nACK %d 0\nNACK %d 0\nGET_STATUS %d 0\nSET_UPDATE_STATE %d 0\n"
         "GET_UPDATE_STATE %d 0\nNOTIFY_STREAM %d 0\nGET_HW_REVISION %d 0\n",
         REQ_INSTALL, ACK, NACK, GET_STATUS, SET_UPDATE_STATE, GET_UPDATE_STATE,
         NOTIFY_STREAM, GET_HW_REVISION);
  printf("SOURCE_LOCAL %d 0\nRUN_DEFAULT %d 0\nRUN_DRYRUN %d 0\nRUN_INSTALL %d 0\n",
         SOURCE_LOCAL, RUN_DEFAULT, RUN_DRYRUN, RUN_INSTALL);
  printf("IDLE %d 0\nSTART %d 0\nRUN %d 0\nSUCCESS %d 0\nFAILURE %d 0\nDOWNLOAD %d 0\n"
         "DONE %d 0\nSUBPROCESS %d 0\nPROGRESS %d 0\n",
         IDLE, START, RUN, SUCCESS, FAILURE, DOWNLOAD, DONE, SUBPROCESS, PROGRESS);
  O("magic", ipc_message, magic);
  O("type", ipc_message, type);
  O("msg", ipc_message, data.msg);
  O("status.current", ipc_message, data.status.current);
  O("status.last_result", ipc_message, data.status.last_result);
  O("status.error", ipc_message, data.status.error);
  O("status.desc", ipc_message, data.status.desc);
  O("notify.status", ipc_message, data.notify.status);
  O("notify.error", ipc_message, data.notify.error);
  O("notify.level", ipc_message, data.notify.level);
  O("notify.msg", ipc_message, data.notify.msg);
  O("revisions.boardname", ipc_message, data.revisions.boardname);
  O("revisions.revision", ipc_message, data.revisions.revision);
  O("instmsg.req", ipc_message, data.instmsg.req);
  O("instmsg.len", ipc_message, data.instmsg.len);
  O("instmsg.buf", ipc_message, data.instmsg.buf);
  O("req.apiversion", struct swupdate_request, apiversion);
  O("req.source", struct swupdate_request, source);
  O("req.dry_run", struct swupdate_request, dry_run);
  O("req.len", struct swupdate_request, len);
  O("req.info", struct swupdate_request, info);
  O("req.software_set", struct swupdate_request, software_set);
  O("req.running_mode", struct swupdate_request, running_mode);
  O("req.disable_store_swu", struct swupdate_request, disable_store_swu);
  O("p.magic", struct progress_msg, magic);
  O("p.status", struct progress_msg, status);
  O("p.dwl_percent", struct progress_msg, dwl_percent);
  O("p.dwl_bytes", struct progress_msg, dwl_bytes);
  O("p.nsteps", struct progress_msg, nsteps);
  O("p.cur_step", struct progress_msg, cur_step);
  O("p.cur_percent", struct progress_msg, cur_percent);
  O("p.cur_image", struct progress_msg, cur_image);
  O("p.hnd_name", struct progress_msg, hnd_name);
  O("p.source", struct progress_msg, source);
  O("p.infolen", struct progress_msg, infolen);
  O("p.info", struct progress_msg, info);
  return 0;
}
"#;

/// name → (offset or value, size), from the C compiler.
fn c_layout() -> BTreeMap<String, (i64, usize)> {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("probe.c");
    let bin = dir.path().join("probe");
    std::fs::write(&src, PROBE).unwrap();
    let out = Command::new("gcc")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .output()
        .expect("gcc (scripts/setup-test-deps.sh installs it with libswupdate-dev)");
    assert!(
        out.status.success(),
        "compiling against the libswupdate-dev headers failed (is libswupdate-dev installed?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(&bin).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (
                f[0].to_string(),
                (f[1].parse().unwrap(), f[2].parse().unwrap()),
            )
        })
        .collect()
}

#[test]
fn every_offset_and_size_matches_the_installed_headers() {
    let c = c_layout();
    let l = Abi::NATIVE.layout();
    let r = &l.req;
    let p = abi::PROGRESS_NATIVE_UNPACKED;
    let req = l.instmsg_req;
    // (name in the probe, Rust offset or value, Rust size; 0 = not checked)
    let rust: Vec<(&str, i64, usize)> = vec![
        ("ipc_message", 0, l.size),
        ("swupdate_request", 0, r.size),
        ("progress_msg", 0, p.size),
        ("IPC_MAGIC", i64::from(abi::IPC_MAGIC), 0),
        ("SWUPDATE_API_VERSION", i64::from(abi::API_VERSION), 0),
        ("REQ_INSTALL", i64::from(abi::msg::REQ_INSTALL), 0),
        ("ACK", i64::from(abi::msg::ACK), 0),
        ("NACK", i64::from(abi::msg::NACK), 0),
        ("GET_STATUS", i64::from(abi::msg::GET_STATUS), 0),
        ("SET_UPDATE_STATE", i64::from(abi::msg::SET_UPDATE_STATE), 0),
        ("GET_UPDATE_STATE", i64::from(abi::msg::GET_UPDATE_STATE), 0),
        ("NOTIFY_STREAM", i64::from(abi::msg::NOTIFY_STREAM), 0),
        ("GET_HW_REVISION", i64::from(abi::msg::GET_HW_REVISION), 0),
        ("SOURCE_LOCAL", i64::from(abi::SOURCE_LOCAL), 0),
        ("RUN_DEFAULT", abi::RunType::Default as i64, 0),
        ("RUN_DRYRUN", abi::RunType::DryRun as i64, 0),
        ("RUN_INSTALL", abi::RunType::Install as i64, 0),
        ("magic", abi::MAGIC as i64, 4),
        ("type", abi::TYPE as i64, 4),
        ("msg", abi::MSG as i64, abi::MSG_LEN),
        ("status.current", abi::STATUS_CURRENT as i64, 4),
        ("status.last_result", abi::STATUS_LAST_RESULT as i64, 4),
        ("status.error", abi::STATUS_ERROR as i64, 4),
        ("status.desc", abi::STATUS_DESC as i64, abi::TEXT_LEN),
        ("notify.status", abi::NOTIFY_STATUS as i64, 4),
        ("notify.error", abi::NOTIFY_ERROR as i64, 4),
        ("notify.level", abi::NOTIFY_LEVEL as i64, 4),
        ("notify.msg", abi::NOTIFY_MSG as i64, abi::TEXT_LEN),
        (
            "revisions.boardname",
            abi::REV_BOARDNAME as i64,
            abi::REV_LEN,
        ),
        ("revisions.revision", abi::REV_REVISION as i64, abi::REV_LEN),
        ("instmsg.req", req as i64, r.size),
        ("instmsg.len", l.instmsg_len as i64, 4),
        ("instmsg.buf", l.instmsg_buf as i64, abi::TEXT_LEN),
        ("req.apiversion", r.apiversion as i64, 4),
        ("req.source", r.source as i64, 4),
        ("req.dry_run", r.dry_run as i64, 4),
        ("req.len", r.len as i64, r.len_size),
        ("req.info", r.info as i64, abi::REQ_INFO_LEN),
        ("req.software_set", r.software_set as i64, abi::REQ_SET_LEN),
        ("req.running_mode", r.running_mode as i64, abi::REQ_SET_LEN),
        ("req.disable_store_swu", r.disable_store_swu as i64, 1),
        ("p.magic", p.magic as i64, 4),
        ("p.status", p.status as i64, 4),
        ("p.dwl_percent", p.dwl_percent as i64, 4),
        ("p.dwl_bytes", p.dwl_bytes as i64, 8),
        ("p.nsteps", p.nsteps as i64, 4),
        ("p.cur_step", p.cur_step as i64, 4),
        ("p.cur_percent", p.cur_percent as i64, 4),
        ("p.cur_image", p.cur_image as i64, abi::CUR_IMAGE_LEN),
        ("p.hnd_name", p.hnd_name as i64, abi::HND_NAME_LEN),
        ("p.source", p.source as i64, 4),
        ("p.infolen", p.infolen as i64, 4),
        ("p.info", p.info as i64, abi::PROGRESS_INFO_LEN),
    ];
    let mut rust = rust;
    for name in [
        "IDLE",
        "START",
        "RUN",
        "SUCCESS",
        "FAILURE",
        "DOWNLOAD",
        "DONE",
        "SUBPROCESS",
        "PROGRESS",
    ] {
        // The value the Rust side decodes to this status.
        let v = (0..64)
            .find(|&v| abi::Status::from_raw(v).map(abi::Status::name) == Some(name))
            .map_or(-1, i64::from);
        rust.push((name, v, 0));
    }
    let mut wrong = Vec::new();
    for (name, off, size) in &rust {
        let Some(&(c_off, c_size)) = c.get(*name) else {
            wrong.push(format!("{name}: not printed by the probe"));
            continue;
        };
        if c_off != *off || (*size != 0 || c_size != 0) && c_size != *size {
            wrong.push(format!(
                "{name}: C says {c_off}/{c_size}, Rust says {off}/{size}"
            ));
        }
    }
    assert_eq!(c.len(), rust.len(), "every probed value is compared");
    assert!(
        wrong.is_empty(),
        "layout differences:\n{}",
        wrong.join("\n")
    );
}

/// The messages the backend builds have the C sizes and put each field where C does.
#[test]
fn built_messages_have_the_c_size() {
    let c = c_layout();
    let size = c["ipc_message"].1;
    assert_eq!(abi::message(Abi::NATIVE, abi::msg::GET_STATUS).len(), size);
    let req = abi::InstallRequest {
        run: abi::RunType::DryRun,
        info: "i".into(),
        software_set: "s".into(),
        running_mode: "m".into(),
        disable_store_swu: true,
    };
    let m = abi::install_message(Abi::NATIVE, &req);
    assert_eq!(m.len(), size);
    let at = |k: &str| c[k].0 as usize + c["instmsg.req"].0 as usize;
    assert_eq!(abi::get_i32(&m, at("req.dry_run")), 1);
    assert_eq!(abi::get_u32(&m, at("req.apiversion")), 1);
    assert_eq!(abi::get_str(&m, at("req.info"), 512), "i");
    assert_eq!(abi::get_str(&m, at("req.software_set"), 256), "s");
    assert_eq!(abi::get_str(&m, at("req.running_mode"), 256), "m");
    assert_eq!(m[at("req.disable_store_swu")], 1);
}

/// The 32-bit layout (`Abi::Ilp32`, and the progress frame without padding) against the
/// same headers compiled for i686 (`gcc -m32`): offsets and sizes become `_Static_assert`s,
/// checked at compile time, so no 32-bit C library is needed (its few headers are stubbed).
/// i686 and armv7 EABI share the request layout (no 8-byte member); the i686 progress frame
/// is the 2408-byte layout 2025.12 packs on every target.
#[cfg(target_arch = "x86_64")]
#[test]
fn the_32_bit_layout_matches_the_headers_compiled_for_i686() {
    let l = Abi::Ilp32.layout();
    let r = &l.req;
    let p = abi::PROGRESS_PACKED;
    let req = "struct swupdate_request";
    let msg = "ipc_message";
    let prog = "struct progress_msg";
    let fields: Vec<(&str, &str, usize, usize)> = vec![
        (msg, "magic", abi::MAGIC, 4),
        (msg, "type", abi::TYPE, 4),
        (msg, "data.msg", abi::MSG, abi::MSG_LEN),
        (msg, "data.status.current", abi::STATUS_CURRENT, 4),
        (msg, "data.status.last_result", abi::STATUS_LAST_RESULT, 4),
        (msg, "data.status.error", abi::STATUS_ERROR, 4),
        (msg, "data.status.desc", abi::STATUS_DESC, abi::TEXT_LEN),
        (msg, "data.notify.status", abi::NOTIFY_STATUS, 4),
        (msg, "data.notify.error", abi::NOTIFY_ERROR, 4),
        (msg, "data.notify.level", abi::NOTIFY_LEVEL, 4),
        (msg, "data.notify.msg", abi::NOTIFY_MSG, abi::TEXT_LEN),
        (
            msg,
            "data.revisions.boardname",
            abi::REV_BOARDNAME,
            abi::REV_LEN,
        ),
        (
            msg,
            "data.revisions.revision",
            abi::REV_REVISION,
            abi::REV_LEN,
        ),
        (msg, "data.instmsg.req", l.instmsg_req, r.size),
        (msg, "data.instmsg.len", l.instmsg_len, 4),
        (msg, "data.instmsg.buf", l.instmsg_buf, abi::TEXT_LEN),
        (req, "apiversion", r.apiversion, 4),
        (req, "source", r.source, 4),
        (req, "dry_run", r.dry_run, 4),
        (req, "len", r.len, r.len_size),
        (req, "info", r.info, abi::REQ_INFO_LEN),
        (req, "software_set", r.software_set, abi::REQ_SET_LEN),
        (req, "running_mode", r.running_mode, abi::REQ_SET_LEN),
        (req, "disable_store_swu", r.disable_store_swu, 1),
        (prog, "magic", p.magic, 4),
        (prog, "status", p.status, 4),
        (prog, "dwl_percent", p.dwl_percent, 4),
        (prog, "dwl_bytes", p.dwl_bytes, 8),
        (prog, "nsteps", p.nsteps, 4),
        (prog, "cur_step", p.cur_step, 4),
        (prog, "cur_percent", p.cur_percent, 4),
        (prog, "cur_image", p.cur_image, abi::CUR_IMAGE_LEN),
        (prog, "hnd_name", p.hnd_name, abi::HND_NAME_LEN),
        (prog, "source", p.source, 4),
        (prog, "infolen", p.infolen, 4),
        (prog, "info", p.info, abi::PROGRESS_INFO_LEN),
    ];
    let mut src = String::from(
        "#include <stddef.h>\n#include <sys/types.h>\n#include <network_ipc.h>\n\
         #include <progress_ipc.h>\n",
    );
    src.push_str(&format!(
        "_Static_assert(sizeof(ipc_message) == {}, \"sizeof ipc_message\");\n\
         _Static_assert(sizeof(struct swupdate_request) == {}, \"sizeof swupdate_request\");\n\
         _Static_assert(sizeof(struct progress_msg) == {}, \"sizeof progress_msg\");\n",
        l.size, r.size, p.size
    ));
    for (t, f, off, size) in &fields {
        src.push_str(&format!(
            "_Static_assert(offsetof({t}, {f}) == {off}, \"{t}.{f} at {off}\");\n\
             _Static_assert(sizeof((({t} *)0)->{f}) == {size}, \"{t}.{f} is {size} bytes\");\n"
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let stub = dir.path().join("stub");
    std::fs::create_dir_all(stub.join("sys")).unwrap();
    // What network_ipc.h pulls from the C library, for a 32-bit target.
    std::fs::write(stub.join("stdlib.h"), "#include <stddef.h>\n").unwrap();
    std::fs::write(stub.join("string.h"), "#include <stddef.h>\n").unwrap();
    std::fs::write(stub.join("sys/types.h"), "typedef long ssize_t;\n").unwrap();
    let c = dir.path().join("layout32.c");
    std::fs::write(&c, src).unwrap();
    let gcc_include = Command::new("gcc")
        .arg("-print-file-name=include")
        .output()
        .unwrap();
    let gcc_include = String::from_utf8(gcc_include.stdout).unwrap();
    let out = Command::new("gcc")
        .args([
            "-m32",
            "-nostdinc",
            "-fsyntax-only",
            "-isystem",
            gcc_include.trim(),
        ])
        .arg("-I")
        .arg(&stub)
        .args(["-idirafter", "/usr/include"])
        .arg(&c)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the 32-bit layout differs from the headers:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
