//! SWUpdate's IPC byte layouts, as explicit offsets per target ABI (no `repr(C)` guesses).
//!
//! `ipc_message` (control socket) is `{ int magic; int type; msgdata data; }` in native byte
//! order; its size is 3120 bytes on LP64 targets (x86_64, aarch64) and 3104 on ILP32 ones
//! (armv7 EABI, i686), because `struct swupdate_request` holds a `size_t`. The daemon drops
//! any message that is not exactly its own size, so every message is built whole here and
//! sent in one write. `struct progress_msg` (progress socket) comes in two layouts: aligned
//! (2416 bytes: a 4-byte hole before the `unsigned long long`; 2022.12 to 2025.05 on
//! x86_64, aarch64 and armv7) and packed (2408 bytes: 2025.12's `packed` struct on every
//! target, and the unpacked struct on i686, where a `long long` is 4-byte aligned).
//!
//! Every offset below is checked against the installed C headers by
//! `tests/swupdate_layout.rs` (gcc + `offsetof`).

/// `IPC_MAGIC`.
pub const IPC_MAGIC: i32 = 0x1405_2001;
/// `SWUPDATE_API_VERSION`: a request with another value is refused with an empty NACK.
pub const API_VERSION: u32 = 1;

/// `msgtype` values (`network_ipc.h`).
pub mod msg {
    pub const REQ_INSTALL: i32 = 0;
    pub const ACK: i32 = 1;
    pub const NACK: i32 = 2;
    pub const GET_STATUS: i32 = 3;
    pub const SET_UPDATE_STATE: i32 = 7;
    pub const GET_UPDATE_STATE: i32 = 8;
    pub const NOTIFY_STREAM: i32 = 11;
    pub const GET_HW_REVISION: i32 = 12;
}

/// `sourcetype SOURCE_LOCAL`: what the request says it comes from (shown in progress).
pub const SOURCE_LOCAL: i32 = 4;

/// `run_type` of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunType {
    /// `RUN_DEFAULT`: follow the daemon's `-n`.
    Default = 0,
    /// `RUN_DRYRUN`: parse and verify, write nothing.
    DryRun = 1,
    /// `RUN_INSTALL`: install even if the daemon runs with `-n`.
    Install = 2,
}

/// `RECOVERY_STATUS` (unchanged from 2022.12 to 2026.05).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Idle,
    Start,
    Run,
    Success,
    Failure,
    Download,
    Done,
    Subprocess,
    Progress,
}

impl Status {
    pub fn from_raw(v: i32) -> Option<Status> {
        Some(match v {
            0 => Status::Idle,
            1 => Status::Start,
            2 => Status::Run,
            3 => Status::Success,
            4 => Status::Failure,
            5 => Status::Download,
            6 => Status::Done,
            7 => Status::Subprocess,
            8 => Status::Progress,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Status::Idle => "IDLE",
            Status::Start => "START",
            Status::Run => "RUN",
            Status::Success => "SUCCESS",
            Status::Failure => "FAILURE",
            Status::Download => "DOWNLOAD",
            Status::Done => "DONE",
            Status::Subprocess => "SUBPROCESS",
            Status::Progress => "PROGRESS",
        }
    }
}

/// The target ABI: decides the size of `size_t` inside `struct swupdate_request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abi {
    /// x86_64, aarch64: `ipc_message` is 3120 bytes.
    Lp64,
    /// armv7 EABI, i686: `ipc_message` is 3104 bytes.
    Ilp32,
}

impl Abi {
    /// The ABI this binary was built for (the bridge runs next to the daemon).
    pub const NATIVE: Abi = if cfg!(target_pointer_width = "64") {
        Abi::Lp64
    } else {
        Abi::Ilp32
    };

    pub const fn layout(self) -> &'static IpcLayout {
        match self {
            Abi::Lp64 => &LP64,
            Abi::Ilp32 => &ILP32,
        }
    }
}

/// Offsets inside `struct swupdate_request` (relative to the struct).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLayout {
    pub size: usize,
    pub apiversion: usize,
    pub source: usize,
    pub dry_run: usize,
    /// `size_t len`: 8 bytes on LP64, 4 on ILP32.
    pub len: usize,
    pub len_size: usize,
    pub info: usize,
    pub software_set: usize,
    pub running_mode: usize,
    pub disable_store_swu: usize,
}

/// Offsets inside `ipc_message` (relative to the message) that the bridge uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpcLayout {
    pub size: usize,
    /// `data.instmsg.req`.
    pub instmsg_req: usize,
    pub req: RequestLayout,
    /// `data.instmsg.len`, `data.instmsg.buf`.
    pub instmsg_len: usize,
    pub instmsg_buf: usize,
}

/// Offsets common to both ABIs (every member before them is a 4-byte int).
pub const MAGIC: usize = 0;
pub const TYPE: usize = 4;
/// `data.msg[128]`.
pub const MSG: usize = 8;
pub const MSG_LEN: usize = 128;
/// `data.status.{current,last_result,error,desc[2048]}`.
pub const STATUS_CURRENT: usize = 8;
pub const STATUS_LAST_RESULT: usize = 12;
pub const STATUS_ERROR: usize = 16;
pub const STATUS_DESC: usize = 20;
pub const TEXT_LEN: usize = 2048;
/// `data.notify.{status,error,level,msg[2048]}`.
pub const NOTIFY_STATUS: usize = 8;
pub const NOTIFY_ERROR: usize = 12;
pub const NOTIFY_LEVEL: usize = 16;
pub const NOTIFY_MSG: usize = 20;
/// `data.revisions.{boardname[256],revision[256]}`.
pub const REV_BOARDNAME: usize = 8;
pub const REV_REVISION: usize = 264;
pub const REV_LEN: usize = 256;
/// `info[512]`, `software_set[256]`, `running_mode[256]` of a request.
pub const REQ_INFO_LEN: usize = 512;
pub const REQ_SET_LEN: usize = 256;

const LP64: IpcLayout = IpcLayout {
    size: 3120,
    instmsg_req: 8,
    req: RequestLayout {
        size: 1056,
        apiversion: 0,
        source: 4,
        dry_run: 8,
        len: 16,
        len_size: 8,
        info: 24,
        software_set: 536,
        running_mode: 792,
        disable_store_swu: 1048,
    },
    instmsg_len: 1064,
    instmsg_buf: 1068,
};

const ILP32: IpcLayout = IpcLayout {
    size: 3104,
    instmsg_req: 8,
    req: RequestLayout {
        size: 1044,
        apiversion: 0,
        source: 4,
        dry_run: 8,
        len: 12,
        len_size: 4,
        info: 16,
        software_set: 528,
        running_mode: 784,
        disable_store_swu: 1040,
    },
    instmsg_len: 1052,
    instmsg_buf: 1056,
};

fn put_i32(buf: &mut [u8], off: usize, v: i32) {
    buf[off..off + 4].copy_from_slice(&v.to_ne_bytes());
}

fn put_u32(buf: &mut [u8], off: usize, v: u32) {
    buf[off..off + 4].copy_from_slice(&v.to_ne_bytes());
}

/// Copies `s` into a `char[cap]` field, cut so a terminating NUL always fits.
fn put_str(buf: &mut [u8], off: usize, cap: usize, s: &str) {
    let b = s.as_bytes();
    let n = b.len().min(cap.saturating_sub(1));
    buf[off..off + n].copy_from_slice(&b[..n]);
}

pub fn get_i32(buf: &[u8], off: usize) -> i32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[off..off + 4]);
    i32::from_ne_bytes(b)
}

pub fn get_u32(buf: &[u8], off: usize) -> u32 {
    get_i32(buf, off) as u32
}

/// A NUL-terminated `char[cap]` field as text (lossy UTF-8), bounded by `cap`.
pub fn get_str(buf: &[u8], off: usize, cap: usize) -> String {
    let end = (off + cap).min(buf.len());
    let field = buf.get(off..end).unwrap_or_default();
    let n = field.iter().position(|&c| c == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..n]).trim_end().to_string()
}

/// A zeroed message of `mtype`, exactly the size the daemon expects.
pub fn message(abi: Abi, mtype: i32) -> Vec<u8> {
    let mut m = vec![0u8; abi.layout().size];
    put_i32(&mut m, MAGIC, IPC_MAGIC);
    put_i32(&mut m, TYPE, mtype);
    m
}

/// What a REQ_INSTALL asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallRequest {
    pub run: RunType,
    /// Free text, passed to the progress START frame.
    pub info: String,
    /// `software_set` / `running_mode`: must be accepted by the daemon's `-q`.
    pub software_set: String,
    pub running_mode: String,
    /// `disable_store_swu`: SWUpdate does not copy this stream to its `-o` file (the
    /// signature probe must not overwrite an operator's saved image).
    pub disable_store_swu: bool,
}

/// REQ_INSTALL with `swupdate_request` filled as `swupdate_prepare_req` does plus ours.
pub fn install_message(abi: Abi, req: &InstallRequest) -> Vec<u8> {
    let l = abi.layout();
    let mut m = message(abi, msg::REQ_INSTALL);
    let base = l.instmsg_req;
    put_u32(&mut m, base + l.req.apiversion, API_VERSION);
    put_i32(&mut m, base + l.req.source, SOURCE_LOCAL);
    put_i32(&mut m, base + l.req.dry_run, req.run as i32);
    put_str(&mut m, base + l.req.info, REQ_INFO_LEN, &req.info);
    put_str(
        &mut m,
        base + l.req.software_set,
        REQ_SET_LEN,
        &req.software_set,
    );
    put_str(
        &mut m,
        base + l.req.running_mode,
        REQ_SET_LEN,
        &req.running_mode,
    );
    m[base + l.req.disable_store_swu] = u8::from(req.disable_store_swu);
    m
}

/// SET_UPDATE_STATE with the state character in `msg[0]`.
pub fn set_state_message(abi: Abi, state: u8) -> Vec<u8> {
    let mut m = message(abi, msg::SET_UPDATE_STATE);
    m[MSG] = state;
    m
}

/// One decoded `ipc_message` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub magic: i32,
    pub mtype: i32,
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn parse(bytes: Vec<u8>) -> Reply {
        Reply {
            magic: get_i32(&bytes, MAGIC),
            mtype: get_i32(&bytes, TYPE),
            bytes,
        }
    }

    /// `data.msg` as text (the NACK reason).
    pub fn msg(&self) -> String {
        get_str(&self.bytes, MSG, MSG_LEN)
    }
}

/// A GET_STATUS answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReply {
    pub current: Option<Status>,
    pub last_result: Option<Status>,
    pub error: i32,
    pub desc: String,
}

impl StatusReply {
    pub fn parse(r: &Reply) -> StatusReply {
        StatusReply {
            current: Status::from_raw(get_i32(&r.bytes, STATUS_CURRENT)),
            last_result: Status::from_raw(get_i32(&r.bytes, STATUS_LAST_RESULT)),
            error: get_i32(&r.bytes, STATUS_ERROR),
            desc: get_str(&r.bytes, STATUS_DESC, TEXT_LEN),
        }
    }
}

/// A NOTIFY_STREAM message (type 11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub status: Option<Status>,
    pub error: i32,
    pub level: i32,
    pub msg: String,
}

impl Notification {
    pub fn parse(r: &Reply) -> Notification {
        Notification {
            status: Status::from_raw(get_i32(&r.bytes, NOTIFY_STATUS)),
            error: get_i32(&r.bytes, NOTIFY_ERROR),
            level: get_i32(&r.bytes, NOTIFY_LEVEL),
            msg: get_str(&r.bytes, NOTIFY_MSG, TEXT_LEN),
        }
    }
}

/// Offsets of `struct progress_msg` fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressLayout {
    pub size: usize,
    pub magic: usize,
    pub status: usize,
    pub dwl_percent: usize,
    pub dwl_bytes: usize,
    pub nsteps: usize,
    pub cur_step: usize,
    pub cur_percent: usize,
    pub cur_image: usize,
    pub hnd_name: usize,
    pub source: usize,
    pub infolen: usize,
    pub info: usize,
}

pub const CUR_IMAGE_LEN: usize = 256;
pub const HND_NAME_LEN: usize = 64;
pub const PROGRESS_INFO_LEN: usize = 2048;

/// 2416 bytes: `unsigned long long dwl_bytes` 8-aligned (2022.12–2025.05 on x86_64,
/// aarch64, armv7).
pub const PROGRESS_ALIGNED: ProgressLayout = ProgressLayout {
    size: 2416,
    magic: 0,
    status: 4,
    dwl_percent: 8,
    dwl_bytes: 16,
    nsteps: 24,
    cur_step: 28,
    cur_percent: 32,
    cur_image: 36,
    hnd_name: 292,
    source: 356,
    infolen: 360,
    info: 364,
};

/// 2408 bytes: no hole (2025.12's packed struct everywhere; the unpacked one on i686).
pub const PROGRESS_PACKED: ProgressLayout = ProgressLayout {
    size: 2408,
    magic: 0,
    status: 4,
    dwl_percent: 8,
    dwl_bytes: 12,
    nsteps: 20,
    cur_step: 24,
    cur_percent: 28,
    cur_image: 32,
    hnd_name: 288,
    source: 352,
    infolen: 356,
    info: 360,
};

/// The unpacked (pre-2025.12) progress layout of this target.
pub const PROGRESS_NATIVE_UNPACKED: ProgressLayout = if cfg!(target_arch = "x86") {
    PROGRESS_PACKED
} else {
    PROGRESS_ALIGNED
};

/// One decoded progress frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressFrame {
    /// 0 in 2022.12/2023.05; the API version from 2023.12.
    pub apiversion: u32,
    pub status: Option<Status>,
    pub dwl_percent: u32,
    pub nsteps: u32,
    pub cur_step: u32,
    pub cur_percent: u32,
    pub image: String,
    pub handler: String,
    pub info: String,
}

impl ProgressFrame {
    pub fn parse(l: &ProgressLayout, b: &[u8]) -> ProgressFrame {
        let infolen = (get_u32(b, l.infolen) as usize).min(PROGRESS_INFO_LEN);
        ProgressFrame {
            apiversion: get_u32(b, l.magic),
            status: Status::from_raw(get_i32(b, l.status)),
            dwl_percent: get_u32(b, l.dwl_percent),
            nsteps: get_u32(b, l.nsteps),
            cur_step: get_u32(b, l.cur_step),
            cur_percent: get_u32(b, l.cur_percent),
            image: get_str(b, l.cur_image, CUR_IMAGE_LEN),
            handler: get_str(b, l.hnd_name, HND_NAME_LEN),
            info: get_str(b, l.info, infolen),
        }
    }

    /// Whole-install percentage: finished steps plus the current one's share.
    pub fn overall_percent(&self) -> Option<u8> {
        if self.nsteps == 0 || self.cur_step == 0 {
            return None;
        }
        let steps = self.nsteps as u64;
        let done = (self.cur_step as u64 - 1).min(steps);
        let cur = (self.cur_percent as u64).min(100);
        Some(((done * 100 + cur) / steps).min(100) as u8)
    }

    /// `step 1/2 rootfs.img (raw) 45%`, as the dashboard shows it.
    pub fn describe(&self) -> String {
        let mut s = format!("step {}/{}", self.cur_step.min(self.nsteps), self.nsteps);
        if !self.image.is_empty() {
            s.push(' ');
            s.push_str(&self.image);
        }
        if !self.handler.is_empty() {
            s.push_str(&format!(" ({})", self.handler));
        }
        s.push_str(&format!(" {}%", self.cur_percent.min(100)));
        s
    }
}

#[cfg(test)]
mod tests;
