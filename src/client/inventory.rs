//! Inventory (PROTOCOL.md §2): PUT the full attribute set (200), PATCH on 405 (servers
//! older than Mender 2.6 know only PATCH). A send whose body hashes the same as the last
//! one the server accepted is skipped, as the C++ client does; the memory of it is dropped
//! at every new authentication (a new token may mean a new device record).

use bytes::Bytes;
use http::{Method, StatusCode};
use sha2::{Digest, Sha256};

use super::auth::status_error;
use super::error::{Call, ClientError};
use super::Client;
use mender_api::inventory::{self, Attribute, ATTRIBUTES, MAX_ATTRIBUTES};
use mender_api::MAX_BODY;

/// What [`Client::send_inventory`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InventoryOutcome {
    /// The server accepted the set (by PUT, or by PATCH after a 405).
    Sent { patch: bool },
    /// The same body was accepted before; nothing was sent.
    Unchanged,
}

/// The request body: attributes sorted by name (a stable order makes the hash stable),
/// compact JSON. Checks the server's rules: names 1..=1024 characters, at most 100
/// attributes, body under 1 MiB.
pub(crate) fn inventory_body(attributes: &[Attribute]) -> Result<Vec<u8>, ClientError> {
    let invalid = |detail: String| ClientError::InvalidRequest {
        call: Call::Inventory,
        detail,
    };
    inventory::validate_attributes(attributes).map_err(|e| invalid(e.to_string()))?;
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(invalid(format!(
            "{} attributes; the server keeps at most {MAX_ATTRIBUTES}",
            attributes.len()
        )));
    }
    let mut sorted: Vec<&Attribute> = attributes.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let body = serde_json::to_vec(&sorted).map_err(|e| invalid(e.to_string()))?;
    if body.len() > MAX_BODY {
        return Err(invalid(format!(
            "body of {} bytes; the server accepts at most {MAX_BODY}",
            body.len()
        )));
    }
    Ok(body)
}

impl Client {
    /// Sends the full inventory, unless the same body was accepted since the last
    /// authentication.
    pub async fn send_inventory(
        &self,
        attributes: &[Attribute],
    ) -> Result<InventoryOutcome, ClientError> {
        let body = inventory_body(attributes)?;
        let hash: [u8; 32] = Sha256::digest(&body).into();
        if self.last_inventory() == Some(hash) {
            tracing::debug!("inventory unchanged since the last update; not sent");
            return Ok(InventoryOutcome::Unchanged);
        }
        let body = Bytes::from(body);
        let mut patch = false;
        let mut answer = self
            .authorized(Call::Inventory, Method::PUT, ATTRIBUTES, Some(body.clone()))
            .await?;
        if answer.status == StatusCode::METHOD_NOT_ALLOWED {
            tracing::info!("inventory: PUT not allowed (405); using PATCH");
            patch = true;
            answer = self
                .authorized(Call::Inventory, Method::PATCH, ATTRIBUTES, Some(body))
                .await?;
        }
        if !answer.status.is_success() {
            return Err(status_error(Call::Inventory, ATTRIBUTES, &answer));
        }
        if let Ok(mut g) = self.inner.inventory_sent.lock() {
            *g = Some(hash);
        }
        tracing::info!(attributes = attributes.len(), patch, "inventory sent");
        Ok(InventoryOutcome::Sent { patch })
    }

    /// Forgets the last accepted inventory: the next [`send_inventory`](Self::send_inventory)
    /// sends in any case.
    pub fn forget_inventory(&self) {
        if let Ok(mut g) = self.inner.inventory_sent.lock() {
            *g = None;
        }
    }

    fn last_inventory(&self) -> Option<[u8; 32]> {
        self.inner.inventory_sent.lock().ok().and_then(|g| *g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_sorted_and_checked() {
        let attrs = vec![
            Attribute::new("kernel", "6.1"),
            Attribute::new("device_type", "dev"),
            Attribute::new("ip", vec!["10.0.0.1".to_string(), "10.0.0.2".to_string()]),
        ];
        let b = inventory_body(&attrs).unwrap();
        assert_eq!(
            std::str::from_utf8(&b).unwrap(),
            r#"[{"name":"device_type","value":"dev"},{"name":"ip","value":["10.0.0.1","10.0.0.2"]},{"name":"kernel","value":"6.1"}]"#
        );
        let mut rev = attrs.clone();
        rev.reverse();
        assert_eq!(inventory_body(&rev).unwrap(), b);
        assert!(inventory_body(&[Attribute::new("", "x")]).is_err());
        let many: Vec<_> = (0..101)
            .map(|i| Attribute::new(format!("a{i}"), "x"))
            .collect();
        assert!(inventory_body(&many).is_err());
        let big = vec![Attribute::new("big", "x".repeat(MAX_BODY))];
        assert!(inventory_body(&big).is_err());
    }
}
