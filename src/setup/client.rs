//! The API client's settings from the configuration: servers in order, tenant token,
//! TLS (`ServerCertificate`, `HttpsClient`, `SkipVerify`), the auth backoff and the
//! `[download]` section.

use crate::client::{Backoff, ClientConfig, DownloadConfig, TlsConfig};
use crate::config::Config;

/// The client settings of a loaded configuration: servers in order, tenant token,
/// `ServerCertificate`, `HttpsClient` (mTLS), `SkipVerify`, the auth backoff of
/// `RetryPollIntervalSeconds`/`RetryPollCount`, and the `[download]` section.
pub fn client_config(c: &Config) -> ClientConfig {
    let token = c.tenant_token.expose();
    let defaults = ClientConfig::default();
    ClientConfig {
        servers: c.servers.iter().map(|s| s.as_str().to_string()).collect(),
        tenant_token: (!token.is_empty()).then(|| token.to_string()),
        tls: TlsConfig {
            server_certificate: c.server_certificate.clone(),
            client_certificate: c.https_client.certificate.clone(),
            client_key: c.https_client.key.clone(),
            skip_verify: c.skip_verify,
        },
        auth_retry: Backoff::official(c.retry_poll_interval, c.retry_poll_count),
        download: DownloadConfig {
            idle_timeout: c.download.idle_timeout,
            max_resume_attempts: c.download.max_resume_attempts,
            resume_backoff: Backoff {
                initial: c.download.backoff_initial,
                max: c.download.backoff_max,
                repeats: 1,
                max_tries: None,
            },
            ..defaults.download.clone()
        },
        ..defaults
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::ConfigPaths;

    #[test]
    fn maps_the_mender_conf_settings() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("mender.conf");
        std::fs::write(
            &conf,
            r#"{"Servers":[{"ServerURL":"https://a.example/"},{"ServerURL":"https://b.example"}],
                "TenantToken":"tok","ServerCertificate":"/etc/ca.pem","SkipVerify":true,
                "HttpsClient":{"Certificate":"/c.pem","Key":"/k.pem"},
                "RetryPollIntervalSeconds":120,"RetryPollCount":7}"#,
        )
        .unwrap();
        let paths = ConfigPaths {
            mender_conf: Some(conf),
            data_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        };
        let loaded = Config::load_from(&paths, Vec::<(String, String)>::new()).unwrap();
        let c = client_config(&loaded.config);
        assert_eq!(c.servers, ["https://a.example", "https://b.example"]);
        assert_eq!(c.tenant_token.as_deref(), Some("tok"));
        assert_eq!(
            c.tls.server_certificate.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        assert!(c.tls.skip_verify);
        assert_eq!(
            c.tls.client_key.as_deref(),
            Some(std::path::Path::new("/k.pem"))
        );
        assert_eq!(c.auth_retry.max, Duration::from_secs(120));
        assert_eq!(c.auth_retry.max_tries, Some(7));
        assert_eq!(c.download.max_resume_attempts, 10);
        c.validate().unwrap();
    }
}
