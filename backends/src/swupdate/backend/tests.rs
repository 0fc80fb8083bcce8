use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

use super::{parse_sw_versions, Route, SwupdateBackend, PAYLOAD_TYPE};
use crate::swupdate::abi::Abi;
use crate::swupdate::SwupdateConfig;
use crate::{Backend, PayloadInfo};

use crate::swupdate::abi;

/// A scripted daemon: ACKs every control message, swallows an install stream until
/// EOF (counting its bytes), then sends RUN and SUCCESS to the progress client; records
/// every SET_UPDATE_STATE.
struct Scripted {
    received: Arc<Mutex<u64>>,
    states: Arc<Mutex<Vec<u8>>>,
}

fn ack(size: usize) -> Vec<u8> {
    let mut m = vec![0u8; size];
    m[0..4].copy_from_slice(&abi::IPC_MAGIC.to_ne_bytes());
    m[4..8].copy_from_slice(&abi::msg::ACK.to_ne_bytes());
    m
}

fn frame(status: i32) -> Vec<u8> {
    let l = abi::PROGRESS_NATIVE_UNPACKED;
    let mut f = vec![0u8; l.size];
    f[l.status..l.status + 4].copy_from_slice(&status.to_ne_bytes());
    f
}

fn scripted(ctl: UnixListener, prog: UnixListener) -> Scripted {
    let size = Abi::NATIVE.layout().size;
    let received = Arc::new(Mutex::new(0u64));
    let states = Arc::new(Mutex::new(Vec::new()));
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut p, _) = prog.accept().await.unwrap();
        let _ = done_rx.await;
        p.write_all(&frame(2)).await.unwrap();
        p.write_all(&frame(3)).await.unwrap();
        let _ = p.read_u8().await;
    });
    let (r, st) = (received.clone(), states.clone());
    let done = Arc::new(Mutex::new(Some(done_tx)));
    tokio::spawn(async move {
        loop {
            let Ok((mut c, _)) = ctl.accept().await else {
                return;
            };
            let (r, st, done) = (r.clone(), st.clone(), done.clone());
            tokio::spawn(async move {
                let mut m = vec![0u8; size];
                if c.read_exact(&mut m).await.is_err() {
                    return;
                }
                let _ = c.write_all(&ack(size)).await;
                match abi::get_i32(&m, abi::TYPE) {
                    abi::msg::REQ_INSTALL => {
                        let mut buf = vec![0u8; 65536];
                        while let Ok(n) = c.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                            *r.lock().unwrap() += n as u64;
                        }
                        if let Some(d) = done.lock().unwrap().take() {
                            let _ = d.send(());
                        }
                    }
                    abi::msg::SET_UPDATE_STATE => st.lock().unwrap().push(m[abi::MSG]),
                    // NOTIFY_STREAM: kept open, silent.
                    _ => {
                        let _ = c.read_u8().await;
                    }
                }
            });
        }
    });
    Scripted { received, states }
}

#[tokio::test]
async fn a_success_for_an_aborted_stream_sets_ustate_failed() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let (ctl, prog) = (dir.path().join("ctl"), dir.path().join("prog"));
    let daemon = scripted(
        UnixListener::bind(&ctl).unwrap(),
        UnixListener::bind(&prog).unwrap(),
    );
    // The scripted daemon runs as this test's user.
    let uid = std::fs::metadata(&ctl).unwrap().uid();
    let mut b = SwupdateBackend::new(SwupdateConfig {
        control_socket: Some(ctl),
        progress_socket: Some(prog),
        swupdate_uid: Some(uid),
        ustate: true,
        reboot: false,
        timeout: Duration::from_secs(5),
        ..SwupdateConfig::default()
    });
    b.route = Some(Route::Stream);
    let payload = PayloadInfo {
        payload_type: PAYLOAD_TYPE.into(),
        file_name: "x.swu".into(),
        size: 3000,
        sha256: [0; 32],
    };
    b.begin(&payload).await.unwrap();
    b.write(Bytes::from(vec![1u8; 1000])).await.unwrap();
    b.write(Bytes::from(vec![2u8; 2000])).await.unwrap();
    // The checksum did not match: abort, and the daemon says SUCCESS all the same.
    let e = b.abort().await.unwrap_err().to_string();
    assert!(
        e.contains("SWUpdate reported SUCCESS for an install the bridge aborted")
            && e.contains("ustate set to FAILED"),
        "{e}"
    );
    assert_eq!(*daemon.states.lock().unwrap(), vec![b'3'], "ustate FAILED");
    assert_eq!(
        *daemon.received.lock().unwrap(),
        1000,
        "the held-back chunk never went"
    );
    assert!(b
        .take_log()
        .iter()
        .any(|l| l.contains("an unverified update was installed")));
}

#[test]
fn sw_versions_lines() {
    let v = parse_sw_versions("# c\nrootfs 1.2.3\nbad\nuboot  2023.01 extra\n");
    assert_eq!(
        v,
        vec![
            ("swupdate.version.rootfs".to_string(), "1.2.3".into()),
            ("swupdate.version.uboot".to_string(), "2023.01".into()),
        ]
    );
}
