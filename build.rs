//! Records when this binary was built (`BRIDGE_DOCTOR_BUILD_EPOCH`, seconds since the Unix
//! epoch): `SOURCE_DATE_EPOCH` for reproducible builds, else the build machine's clock.
//! `mender-bridge doctor` takes it as the earliest plausible time for the device's clock.

use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
    println!("cargo:rustc-env=BRIDGE_DOCTOR_BUILD_EPOCH={epoch}");
}
