use super::*;

#[test]
fn sizes_per_abi() {
    assert_eq!(message(Abi::Lp64, msg::GET_STATUS).len(), 3120);
    assert_eq!(message(Abi::Ilp32, msg::GET_STATUS).len(), 3104);
    for abi in [Abi::Lp64, Abi::Ilp32] {
        let l = abi.layout();
        assert_eq!(l.instmsg_req + l.req.size + 4, l.instmsg_buf);
        assert_eq!(l.instmsg_len + 4, l.instmsg_buf);
        let end = l.instmsg_buf + TEXT_LEN;
        assert!(
            end <= l.size && l.size - end < 8,
            "the union ends in instmsg.buf"
        );
    }
}

#[test]
fn install_request_bytes() {
    let req = InstallRequest {
        run: RunType::DryRun,
        info: "x".repeat(600),
        software_set: "stable".into(),
        running_mode: "main".into(),
        disable_store_swu: true,
    };
    let m = install_message(Abi::Lp64, &req);
    assert_eq!(get_i32(&m, 0), IPC_MAGIC);
    assert_eq!(get_i32(&m, 4), msg::REQ_INSTALL);
    assert_eq!(get_u32(&m, 8), 1, "apiversion");
    assert_eq!(get_i32(&m, 12), SOURCE_LOCAL);
    assert_eq!(get_i32(&m, 16), 1, "dry run");
    assert_eq!(get_str(&m, 8 + 24, 512).len(), 511, "info cut, NUL kept");
    assert_eq!(get_str(&m, 8 + 536, 256), "stable");
    assert_eq!(get_str(&m, 8 + 792, 256), "main");
    assert_eq!(m[8 + 1048], 1, "disable_store_swu");
    let m = install_message(Abi::Ilp32, &req);
    assert_eq!(m.len(), 3104);
    assert_eq!(get_str(&m, 8 + 528, 256), "stable");
    assert_eq!(get_str(&m, 8 + 784, 256), "main");
}

#[test]
fn progress_frames_decode_in_both_layouts() {
    for l in [PROGRESS_ALIGNED, PROGRESS_PACKED] {
        let mut b = vec![0u8; l.size];
        put_i32(&mut b, l.status, 8);
        put_u32(&mut b, l.nsteps, 2);
        put_u32(&mut b, l.cur_step, 2);
        put_u32(&mut b, l.cur_percent, 50);
        put_str(&mut b, l.cur_image, CUR_IMAGE_LEN, "rootfs.img");
        put_str(&mut b, l.hnd_name, HND_NAME_LEN, "raw");
        put_u32(&mut b, l.infolen, 5);
        put_str(&mut b, l.info, 6, "hello");
        let f = ProgressFrame::parse(&l, &b);
        assert_eq!(f.status, Some(Status::Progress));
        assert_eq!(f.overall_percent(), Some(75));
        assert_eq!(f.describe(), "step 2/2 rootfs.img (raw) 50%");
        assert_eq!(f.info, "hello");
    }
}
