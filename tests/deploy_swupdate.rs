//! The SWUpdate backend end to end against the real SWUpdate 2022.12 daemon (Debian
//! `swupdate`): a signed .swu (raw + rawfile handlers writing plain files) wrapped with
//! `mender-artifact write module-image -T swu`, deployed from the simulator through the
//! engine, streamed into the daemon's install socket. What the dashboard sees (the sim's
//! status history) and what the daemon did (its targets, its log) are checked.
#![cfg(feature = "sim")]

mod common;

use common::device::{finals, history, image, Device};
use common::sim::TestSim;
use common::swupdate::{engine, upload_and_deploy, SwuDaemon, SwuDir};
use mender_bridge::api::DeploymentStatus;
use mender_bridge::deploy::engine::Outcome;

#[tokio::test]
async fn a_swu_streams_into_swupdate_and_succeeds() {
    let sim = TestSim::start().await;
    let dev = Device::new(&sim).await;
    let d = SwuDir::new();
    let daemon = SwuDaemon::start(&d);
    let img = image(3 << 20, 21);
    let swu = d.swu("ok", &img, "1.0", "dev");
    let dep = upload_and_deploy(&sim, &dev.id, "release-2", d.artifact("release-2", &swu)).await;

    let mut engine = engine(&dev, &sim, daemon.config());
    assert_eq!(
        engine.check_update().await.unwrap(),
        Outcome::Finished(DeploymentStatus::Success)
    );
    assert_eq!(std::fs::read(d.copy()).unwrap(), img, "rawfile target");
    assert_eq!(
        &std::fs::read(d.target()).unwrap()[..img.len()],
        &img[..],
        "raw target"
    );
    assert_eq!(daemon.installs_started(), 1);
    let h = history(&sim, &dep, &dev.id).await;
    assert_eq!(h.last().map(|(s, _)| s.as_str()), Some("success"), "{h:?}");
    assert_eq!(finals(&h), 1);
    assert!(
        h.iter().any(|(s, sub)| s == "installing"
            && sub
                .as_deref()
                .is_some_and(|t| t.contains("step ") && t.contains("rootfs.img"))),
        "SWUpdate's progress on the dashboard: {h:?}"
    );
    // Nothing of the payload was written by the bridge: its store holds only its records.
    let stored: Vec<_> = SwuDir::files_under(&dev.dir.path().join("store"))
        .into_iter()
        .filter(|p| {
            std::fs::metadata(p)
                .map(|m| m.len() > 64 * 1024)
                .unwrap_or(false)
        })
        .collect();
    assert!(stored.is_empty(), "large files in the store: {stored:?}");
    let provides = dev.store().installed().unwrap().unwrap();
    assert_eq!(provides["artifact_name"], "release-2");
}
