//! The device identity, from the identity script run as the client runs it
//! ([`crate::setup::identity`]: its timeout and output caps, or the first MAC address when
//! there is no script). A failing or empty script fails: the server cannot admit a device
//! without an identity.

use crate::config::Config;
use crate::identity::DeviceIdentity;

use super::{Check, Sink};

const NAME: &str = "identity";

/// Reports the identity; returns it when there is one.
pub async fn check(cfg: &Config, out: &mut dyn Sink) -> Option<DeviceIdentity> {
    let script = &cfg.identity_script;
    let source = if script.exists() {
        format!("script {}", script.display())
    } else {
        format!("no script at {}, first MAC address", script.display())
    };
    match crate::setup::identity(cfg).await {
        Ok(id) => {
            out.add(Check::ok(NAME, format!("{}: {}", source, id.id_data())));
            Some(id)
        }
        Err(e) => {
            out.add(Check::fail(
                NAME,
                e.to_string(),
                format!(
                    "the identity script ({}) must exit 0 and print key=value lines, \
                     within script_timeout_seconds",
                    script.display()
                ),
            ));
            None
        }
    }
}
