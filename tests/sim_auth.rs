//! The simulator's authentication route against the real rules (PROTOCOL.md §1), with keys
//! and signatures made by openssl; every answer is checked against the OpenAPI files.
#![cfg(feature = "sim")]

mod common;

use base64::Engine;
use common::sim::{auth, auth_body, chunked, full, jwt_claims, TestKey, TestSim};
use hyper::Method;
use serde_json::json;

const AUTH: &str = "/api/devices/v1/authentication/auth_requests";
const INVENTORY: &str = "/api/devices/v1/inventory/device/attributes";

#[tokio::test]
async fn each_key_type_goes_pending_then_accepted_with_a_jwt() {
    let sim = TestSim::start().await;
    for (i, kind) in ["rsa", "ec", "ed25519"].into_iter().enumerate() {
        let key = TestKey::generate(sim.dir.path(), kind);
        let mac = format!("02:00:00:00:00:0{i}");
        let (id, token) = sim.admit(&key, &mac).await;
        let claims = jwt_claims(&token);
        assert_eq!(claims["sub"], id.as_str(), "{kind}");
        assert_eq!(claims["iss"], "Mender");
        assert_eq!(claims["mender.device"], true);
        assert!(claims["jti"].is_string());
        let (iat, exp) = (
            claims["iat"].as_u64().unwrap(),
            claims["exp"].as_u64().unwrap(),
        );
        assert_eq!(exp - iat, 604_800, "default lifetime");
        // The token works on an authenticated route.
        let r = sim
            .http
            .device(
                Method::PATCH,
                INVENTORY,
                Some(&token),
                Some(br#"[{"name":"k","value":"v"}]"#),
            )
            .await;
        assert_eq!(r.status, 200, "{kind}: {}", r.text());
        let dev = sim
            .http
            .manage_ok(Method::GET, &format!("/devices/{id}"), None)
            .await;
        assert_eq!(dev["status"], "accepted");
        let expected_type = match kind {
            "rsa" => "RSA-3072",
            "ec" => "ECDSA P-256",
            _ => "Ed25519",
        };
        assert_eq!(dev["auth_sets"][0]["key_type"], expected_type);
    }
}

#[tokio::test]
async fn auth_answer_is_raw_jwt_text() {
    let sim = TestSim::start().await;
    let key = TestKey::generate(sim.dir.path(), "ed25519");
    let (_, _) = sim.admit(&key, "m1").await;
    let body = auth_body(&json!({"mac": "m1"}), &key);
    let r = auth(&sim.http, &body, &key.sign_b64(&body)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type").as_deref(), Some("application/jwt"));
    let text = r.text();
    assert_eq!(text.split('.').count(), 3);
    assert!(!text.contains('"') && !text.ends_with('\n'));
}

#[tokio::test]
async fn ecdsa_raw_r_s_is_refused_with_the_reason() {
    let sim = TestSim::start().await;
    let key = TestKey::generate(sim.dir.path(), "ec");
    let body = auth_body(&json!({"mac": "ec-raw"}), &key);
    let der = key.sign(&body);
    let raw = p256::ecdsa::Signature::from_der(&der).unwrap().to_bytes();
    assert_eq!(raw.len(), 64);
    let sig = base64::engine::general_purpose::STANDARD.encode(raw);
    let r = auth(&sim.http, &body, &sig).await;
    assert_eq!(r.status, 401, "{}", r.text());
    let e = r.error();
    assert!(e.contains("signature verification failed"), "{e}");
    assert!(e.contains("raw r||s"), "{e}");
    assert!(e.contains("ECDSA P-256"), "{e}");
    assert!(e.contains(&format!("body: {} bytes", body.len())), "{e}");
    assert!(e.contains(&common::sha256_hex(&body)), "{e}");
    assert!(e.contains("valid raw r||s signature of this body"), "{e}");
    // Checked before the device lookup: the bad request created no device.
    let devs = sim.http.manage_ok(Method::GET, "/devices", None).await;
    assert_eq!(devs.as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn signature_over_other_bytes_is_explained() {
    let sim = TestSim::start().await;
    let key = TestKey::generate(sim.dir.path(), "rsa");
    let body = auth_body(&json!({"mac": "nl"}), &key);
    // Signed without the trailing newline that was sent.
    let sig = key.sign_b64(&body[..body.len() - 1]);
    let r = auth(&sim.http, &body, &sig).await;
    assert_eq!(r.status, 401);
    assert!(
        r.error().contains("without its trailing newline"),
        "{}",
        r.text()
    );
    assert!(r.error().contains("RSA-3072"), "{}", r.text());
}

#[tokio::test]
async fn malformed_requests_are_400() {
    let sim = TestSim::start().await;
    let key = TestKey::generate(sim.dir.path(), "ec");
    // PKCS#1 public key.
    let mut pk1 = TestKey::generate(sim.dir.path(), "rsa");
    pk1.public_pem = pk1.pkcs1_public_pem();
    assert!(pk1.public_pem.contains("BEGIN RSA PUBLIC KEY"));
    let body = auth_body(&json!({"mac": "p1"}), &pk1);
    let r = auth(&sim.http, &body, &pk1.sign_b64(&body)).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.error().contains("PKCS#1"), "{}", r.text());

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not JSON", b"{nope".to_vec()),
        (
            "missing pubkey",
            br#"{"id_data":"{\"mac\":\"x\"}"}"#.to_vec(),
        ),
        (
            "id_data not JSON",
            serde_json::to_vec(&json!({"id_data": "mac=x", "pubkey": key.public_pem})).unwrap(),
        ),
        (
            "id_data an object",
            serde_json::to_vec(&json!({"id_data": {"mac": "x"}, "pubkey": key.public_pem}))
                .unwrap(),
        ),
    ];
    for (what, body) in cases {
        let r = auth(&sim.http, &body, &key.sign_b64(&body)).await;
        assert_eq!(r.status, 400, "{what}: {}", r.text());
    }
    // Missing signature header.
    let body = auth_body(&json!({"mac": "nosig"}), &key);
    let r = sim
        .http
        .send(
            Method::POST,
            AUTH,
            &[("content-type", "application/json")],
            full(body),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.error().contains("X-MEN-Signature"));
}

#[tokio::test]
async fn content_type_and_size_rules() {
    let sim = TestSim::start().await;
    let key = TestKey::generate(sim.dir.path(), "ed25519");
    let body = auth_body(&json!({"mac": "ct"}), &key);
    let sig = key.sign_b64(&body);
    let r = sim
        .http
        .send(
            Method::POST,
            AUTH,
            &[("content-type", "text/plain"), ("x-men-signature", &sig)],
            full(body.clone()),
        )
        .await;
    assert_eq!(r.status, 415, "{}", r.text());
    let r = sim
        .http
        .send(
            Method::POST,
            AUTH,
            &[("x-men-signature", &sig)],
            full(body.clone()),
        )
        .await;
    assert_eq!(r.status, 415, "no content type: {}", r.text());
    // Over 1 MiB, with Content-Length and chunked.
    let big = vec![b' '; 1024 * 1024 + 1];
    let r = sim
        .http
        .send(
            Method::PUT,
            INVENTORY,
            &[("content-type", "application/json")],
            full(big.clone()),
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.text());
    let r = sim
        .http
        .send(
            Method::PUT,
            INVENTORY,
            &[("content-type", "application/json")],
            chunked(&big, 20),
        )
        .await;
    assert_eq!(r.status, 413, "chunked: {}", r.text());
}

#[tokio::test]
async fn chunked_auth_body_is_verified_over_the_received_bytes() {
    let sim = TestSim::start().await;
    let key = TestKey::generate(sim.dir.path(), "rsa");
    let body = auth_body(&json!({"mac": "chunky"}), &key);
    let sig = key.sign_b64(&body);
    let r = sim
        .http
        .send(
            Method::POST,
            AUTH,
            &[
                ("content-type", "application/json"),
                ("x-men-signature", &sig),
            ],
            chunked(&body, 7),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.error().contains("pending"), "{}", r.text());
    let reqs = sim.http.manage_ok(Method::GET, "/requests", None).await;
    let last = reqs.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["chunked"], true);
    assert_eq!(last["body_len"], body.len());
}

#[tokio::test]
async fn rejected_preauthorized_and_key_change() {
    let sim = TestSim::start().await;
    let key = TestKey::generate(sim.dir.path(), "ec");
    let (id, token) = sim.admit(&key, "rej").await;
    sim.http
        .manage_ok(Method::POST, &format!("/devices/{id}/reject"), None)
        .await;
    let body = auth_body(&json!({"mac": "rej"}), &key);
    let r = auth(&sim.http, &body, &key.sign_b64(&body)).await;
    assert_eq!(r.status, 401);
    assert!(r.error().contains("rejected"), "{}", r.text());
    // The old token stops working.
    let r = sim
        .http
        .device(Method::PUT, INVENTORY, Some(&token), Some(b"[]"))
        .await;
    assert_eq!(r.status, 401);

    // Pre-authorised: the very first request gets a token.
    let key2 = TestKey::generate(sim.dir.path(), "ed25519");
    let created = sim
        .http
        .manage_ok(
            Method::POST,
            "/devices/preauthorize",
            Some(json!({"identity_data": {"mac": "pre"}, "pubkey": key2.public_pem})),
        )
        .await;
    let body = auth_body(&json!({"mac": "pre"}), &key2);
    let r = auth(&sim.http, &body, &key2.sign_b64(&body)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(jwt_claims(&r.text())["sub"], created["id"]);

    // A new key for a known identity: a new pending auth set of the same device.
    let key3 = TestKey::generate(sim.dir.path(), "rsa");
    let body = auth_body(&json!({"mac": "pre"}), &key3);
    let r = auth(&sim.http, &body, &key3.sign_b64(&body)).await;
    assert_eq!(r.status, 401);
    let dev = sim
        .http
        .manage_ok(
            Method::GET,
            &format!("/devices/{}", created["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(dev["auth_sets"].as_array().unwrap().len(), 2);
    assert_eq!(dev["auth_sets"][1]["status"], "pending");
}

#[tokio::test]
async fn short_token_lifetime_expires() {
    let sim = TestSim::start_with(|c| c.jwt_lifetime_secs = Some(1)).await;
    let key = TestKey::generate(sim.dir.path(), "ed25519");
    let (_, token) = sim.admit(&key, "short").await;
    let claims = jwt_claims(&token);
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        1
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = sim
        .http
        .device(Method::PUT, INVENTORY, Some(&token), Some(b"[]"))
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.error().contains("expired"), "{}", r.text());
    // Lifetime set at run time.
    sim.http
        .manage_ok(
            Method::PUT,
            "/settings",
            Some(json!({"jwt_lifetime_secs": 60})),
        )
        .await;
    let body = auth_body(&json!({"mac": "short"}), &key);
    let r = auth(&sim.http, &body, &key.sign_b64(&body)).await;
    let c = jwt_claims(&r.text());
    assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 60);
}

/// `POST /api/sim/devices/{id}/tokens/expire`: the device's tokens so far get 401 at once
/// (the dashboard's "the server rotated its key" or a lifetime that ended), the next
/// authentication gets a token that works, and other devices keep theirs.
#[tokio::test]
async fn expiring_a_devices_tokens_refuses_them_until_it_authenticates_again() {
    let sim = TestSim::start().await;
    let key = TestKey::generate(sim.dir.path(), "ed25519");
    let (id, old) = sim.admit(&key, "expire-me").await;
    let other_key = TestKey::generate(sim.dir.path(), "ec");
    let (_, other) = sim.admit(&other_key, "keep-me").await;
    sim.http
        .manage_ok(Method::POST, &format!("/devices/{id}/tokens/expire"), None)
        .await;
    let r = sim
        .http
        .device(Method::PUT, INVENTORY, Some(&old), Some(b"[]"))
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.error().contains("expired"), "{}", r.text());
    let r = sim
        .http
        .device(Method::PUT, INVENTORY, Some(&other), Some(b"[]"))
        .await;
    assert_eq!(r.status, 200, "another device's token: {}", r.text());

    let body = auth_body(&json!({"mac": "expire-me"}), &key);
    let r = auth(&sim.http, &body, &key.sign_b64(&body)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let new = r.text();
    assert_ne!(new, old);
    let r = sim
        .http
        .device(Method::PUT, INVENTORY, Some(&new), Some(b"[]"))
        .await;
    assert_eq!(r.status, 200, "the new token: {}", r.text());
    let r = sim
        .http
        .device(Method::PUT, INVENTORY, Some(&old), Some(b"[]"))
        .await;
    assert_eq!(r.status, 401, "the old token stays expired: {}", r.text());

    let r = sim
        .http
        .manage(Method::POST, "/devices/nope/tokens/expire", None)
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
}

#[tokio::test]
async fn injected_auth_failure_then_recovery() {
    let sim = TestSim::start().await;
    let key = TestKey::generate(sim.dir.path(), "ed25519");
    sim.http
        .manage_ok(
            Method::POST,
            "/faults/fail",
            Some(json!({"route": "auth", "count": 2, "status": 503})),
        )
        .await;
    let body = auth_body(&json!({"mac": "f"}), &key);
    for _ in 0..2 {
        let r = auth(&sim.http, &body, &key.sign_b64(&body)).await;
        assert_eq!(r.status, 503);
    }
    let r = auth(&sim.http, &body, &key.sign_b64(&body)).await;
    assert_eq!(r.status, 401);
}
