use super::*;

fn frame(l: &ProgressLayout, version: u32, status: i32) -> Vec<u8> {
    let mut b = vec![0u8; l.size];
    b[0..4].copy_from_slice(&version.to_ne_bytes());
    b[l.status..l.status + 4].copy_from_slice(&status.to_ne_bytes());
    b
}

#[test]
fn v2_layout_from_where_the_first_frame_ends() {
    let v = 0x0002_0000;
    let mut two_packed = frame(&PROGRESS_PACKED, v, 1);
    two_packed.extend(frame(&PROGRESS_PACKED, v, 2));
    assert_eq!(detect_v2_layout(&two_packed, v), PROGRESS_PACKED);
    assert_eq!(
        detect_v2_layout(&frame(&PROGRESS_PACKED, v, 4), v),
        PROGRESS_PACKED,
        "a lone 2408-byte frame"
    );
    assert_eq!(
        detect_v2_layout(&frame(&PROGRESS_ALIGNED, v, 1), v),
        PROGRESS_ALIGNED
    );
    let mut two_aligned = frame(&PROGRESS_ALIGNED, v, 1);
    two_aligned.extend(&frame(&PROGRESS_ALIGNED, v, 2)[..4]);
    assert_eq!(detect_v2_layout(&two_aligned, v), PROGRESS_ALIGNED);
}

#[tokio::test]
async fn handshake_and_frames_over_a_socket() {
    for (ack, layout, version) in [
        (
            false,
            PROGRESS_NATIVE_UNPACKED,
            ProgressVersion::Unversioned,
        ),
        (true, PROGRESS_ALIGNED, ProgressVersion::AckAligned),
        (true, PROGRESS_PACKED, ProgressVersion::AckPacked),
    ] {
        let (a, mut b) = UnixStream::pair().unwrap();
        let m = Monitor::new(Some(a));
        use tokio::io::AsyncWriteExt;
        let v = if ack { 0x0002_0000u32 } else { 0 };
        if ack {
            let mut h = v.to_ne_bytes().to_vec();
            h.extend(b"ACK\0");
            b.write_all(&h).await.unwrap();
        }
        // A stale FAILURE before the run was seen active is ignored.
        b.write_all(&frame(&layout, v, 4)).await.unwrap();
        b.write_all(&frame(&layout, v, 1)).await.unwrap();
        b.write_all(&frame(&layout, v, 3)).await.unwrap();
        for _ in 0..50 {
            if m.state().result.is_some() {
                break;
            }
            m.changed(Duration::from_millis(100)).await;
        }
        let s = m.state();
        assert_eq!(s.version, Some(version));
        assert_eq!(s.result, Some(Status::Success), "{version:?}");
    }
}

#[tokio::test]
async fn an_earlier_runs_result_is_not_taken_after_the_accept() {
    let m = Monitor::new(None);
    let f = |status| ProgressFrame {
        apiversion: 0,
        status: Some(status),
        dwl_percent: 0,
        nsteps: 0,
        cur_step: 0,
        cur_percent: 0,
        image: String::new(),
        handler: String::new(),
        info: String::new(),
    };
    // The tail of another client's run, seen between connect and REQ_INSTALL.
    m.state().on_frame(f(Status::Progress));
    m.state().on_frame(f(Status::Success));
    m.accepted();
    assert_eq!(m.state().result, None);
    // This run, refused early: RUN then FAILURE, no START.
    m.state().on_frame(f(Status::Failure));
    assert_eq!(m.state().result, None, "not active yet");
    m.state().on_frame(f(Status::Run));
    m.state().on_frame(f(Status::Failure));
    assert_eq!(m.state().result, Some(Status::Failure));
}

#[test]
fn notifications_become_bounded_log_lines() {
    let mut s = State::default();
    for i in 0..MAX_LOG_LINES + 3 {
        s.on_notification(Notification {
            status: Some(Status::Run),
            error: 0,
            level: 3,
            msg: format!("line {i}"),
        });
    }
    s.on_notification(Notification {
        status: Some(Status::Run),
        error: 0,
        level: 5,
        msg: "trace".into(),
    });
    s.on_notification(Notification {
        status: Some(Status::Failure),
        error: 1,
        level: 1,
        msg: "HASH mismatch".into(),
    });
    assert_eq!(s.log.len(), MAX_LOG_LINES);
    assert_eq!(s.dropped, 4);
    assert_eq!(s.reason(), "HASH mismatch");
    s.on_notification(Notification {
        status: Some(Status::Failure),
        error: 1,
        level: 1,
        msg: "Image invalid or corrupted".into(),
    });
    assert_eq!(s.reason(), "HASH mismatch", "the first error is the cause");
    assert!(!s.log.iter().any(|l| l.contains("trace")));
}

#[tokio::test]
async fn a_failure_waits_briefly_for_its_error_text() {
    // The result (progress socket) and the error text (notification stream) come on
    // two sockets in no fixed order: the reason must be the text, not an info line.
    let m = Monitor::new(None);
    {
        let mut s = m.state();
        s.notifying = true;
        s.result = Some(Status::Failure);
        s.push_log("[mtd_init] : cannot open libmtd".into());
    }
    let sh = m.shared.clone();
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        lock(&sh).on_notification(Notification {
            status: Some(Status::Failure),
            error: 1,
            level: 1,
            msg: "Authentication of all signatures failed".into(),
        });
        sh.changed.notify_waiters();
    });
    m.await_reason(Duration::from_secs(2)).await;
    assert_eq!(
        m.state().reason(),
        "Authentication of all signatures failed"
    );
    let _ = late.await;
    // Nothing to wait for once a text is there, or without notifications.
    let t = std::time::Instant::now();
    m.await_reason(Duration::from_secs(2)).await;
    m.state().notifying = false;
    m.state().errors.clear();
    m.await_reason(Duration::from_secs(2)).await;
    assert!(t.elapsed() < Duration::from_millis(500));
}
