use super::*;

fn args(line: &str) -> Vec<OsString> {
    line.split_whitespace().map(OsString::from).collect()
}

#[test]
fn the_name_picks_the_command_line() {
    let p = |s: &str| Personality::of(Some(&OsString::from(s)));
    assert_eq!(p("/usr/bin/mender-update"), Personality::MenderUpdate);
    assert_eq!(p("mender-auth"), Personality::MenderAuth);
    assert_eq!(p("/usr/bin/mender-bridge"), Personality::Bridge);
    assert_eq!(p("mender"), Personality::Bridge);
    assert_eq!(Personality::of(None), Personality::Bridge);
}

#[test]
fn mender_update_options_and_commands_map_onto_the_bridges() {
    let t = mender_update(args(
        "mender-update -c /x/mender.conf -b /x/fb.conf --datastore /x/data -l warning -L /x/log \
         -E /x/ca.pem --skipverify install /x/a.mender --reboot-exit-code",
    ))
    .expect("parsed");
    assert_eq!(t.cli.config.as_deref(), Some(Path::new("/x/mender.conf")));
    assert_eq!(
        t.cli.fallback_config.as_deref(),
        Some(Path::new("/x/fb.conf"))
    );
    assert_eq!(t.cli.data.as_deref(), Some(Path::new("/x/data")));
    assert_eq!(t.cli.log_level.as_deref(), Some("warn"));
    assert_eq!(t.cli.log_file.as_deref(), Some(Path::new("/x/log")));
    assert_eq!(
        t.overrides,
        [
            ("MENDER_BRIDGE_SERVER_CERTIFICATE", "/x/ca.pem".to_string()),
            ("MENDER_BRIDGE_SKIP_VERIFY", "true".to_string())
        ]
    );
    match t.cli.command {
        Command::Install(a) => {
            assert_eq!(a.artifact, "/x/a.mender");
            assert!(a.reboot_exit_code);
        }
        other => panic!("{other:?}"),
    }
    for (line, check) in [
        ("mender-update commit", "Commit"),
        ("mender-update rollback", "Rollback"),
        ("mender-update daemon", "Daemon"),
        ("mender-update check-update", "CheckUpdate"),
        ("mender-update send-inventory", "SendInventory"),
        ("mender-update show-artifact", "ShowArtifact"),
        ("mender-update show-provides", "ShowProvides"),
    ] {
        let t = mender_update(args(line)).expect(line);
        assert!(format!("{:?}", t.cli.command).starts_with(check), "{line}");
        assert!(t.overrides.is_empty());
    }
}

#[test]
fn resume_and_stop_before_are_the_bridges() {
    let t = mender_update(args(
        "mender-update install a.mender --stop-before ArtifactInstall_Enter --stop-before Cleanup",
    ))
    .expect("install");
    match t.cli.command {
        Command::Install(a) => assert_eq!(a.stop.stop_before, ["ArtifactInstall_Enter", "Cleanup"]),
        other => panic!("{other:?}"),
    }
    let t = mender_update(args(
        "mender-update resume --reboot-exit-code --stop-before ArtifactCommit_Leave",
    ))
    .expect("resume");
    match t.cli.command {
        Command::Resume(a) => {
            assert!(a.reboot_exit_code);
            assert_eq!(a.stop.stop_before, ["ArtifactCommit_Leave"]);
        }
        other => panic!("{other:?}"),
    }
    for (line, state) in [
        (
            "mender-update commit --stop-before ArtifactCommit_Leave",
            "ArtifactCommit_Leave",
        ),
        (
            "mender-update rollback --stop-before ArtifactFailure_Enter",
            "ArtifactFailure_Enter",
        ),
    ] {
        let t = mender_update(args(line)).expect(line);
        let stop = match t.cli.command {
            Command::Commit(a) => a.stop,
            Command::Rollback(a) => a.stop,
            other => panic!("{other:?}"),
        };
        assert_eq!(stop.stop_before, [state], "{line}");
    }
}

#[test]
fn what_the_bridge_does_not_do_is_refused_by_name() {
    let e = mender_auth(args("mender-auth daemon")).expect_err("daemon");
    assert!(e.contains("no separate authentication daemon"), "{e}");
}

#[test]
fn mender_auth_bootstrap() {
    let t = mender_auth(args("mender-auth -d /x bootstrap --forcebootstrap")).expect("parsed");
    assert_eq!(t.cli.data.as_deref(), Some(Path::new("/x")));
    match t.cli.command {
        Command::Bootstrap(a) => assert!(a.force),
        other => panic!("{other:?}"),
    }
    let t = mender_auth(args("mender-auth bootstrap")).expect("parsed");
    assert!(matches!(
        t.cli.command,
        Command::Bootstrap(bootstrap::Args { force: false })
    ));
}
