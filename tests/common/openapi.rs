//! A small OpenAPI 3 checker for the server's device API files in
//! `../shared/specs/mender-server-api`: loads every YAML file, finds the operation of a
//! method + path (templated paths match), resolves `$ref`s across files, and checks a JSON
//! body against the response (or request) schema and the status against the documented
//! ones. The schema subset handled is what those files use: `$ref`, `type`, `nullable`,
//! `properties`, `required`, `additionalProperties`, `items`, `enum`, `oneOf`, `anyOf`,
//! `allOf`, `format: date-time`, `minLength`/`maxLength`.
//!
//! [`OpenApi::check_response`] is strict. [`OpenApi::check_response_protocol`] applies the
//! places where PROTOCOL.md (what the real server does) wins over the files: POST `next`
//! (v1 and v2) answers like the documented GET; 4xx/5xx codes the files do not list (415,
//! 413, 405, injected 5xx) and error answers documented with `content: {}` carry the common
//! Error body; the auth 200 is the raw JWT text (`application/jwt`) checked as the string the
//! file declares.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub struct OpenApi {
    root: PathBuf,
    docs: BTreeMap<PathBuf, Value>,
}

/// A found operation: the file it is in and its object.
pub struct Operation<'a> {
    pub file: PathBuf,
    pub op: &'a Value,
}

impl OpenApi {
    /// Loads `../shared/specs/mender-server-api` next to the repository.
    pub fn load() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/specs/mender-server-api");
        Self::load_from(&root)
    }

    pub fn load_from(root: &Path) -> Self {
        let root = root
            .canonicalize()
            .unwrap_or_else(|e| panic!("OpenAPI files at {}: {e}", root.display()));
        let mut docs = BTreeMap::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("read spec dir") {
                let p = entry.expect("dir entry").path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                    let text = std::fs::read_to_string(&p).expect("read spec");
                    let v: Value = serde_norway::from_str(&text)
                        .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                    docs.insert(p, v);
                }
            }
        }
        assert!(
            !docs.is_empty(),
            "no OpenAPI files under {}",
            root.display()
        );
        OpenApi { root, docs }
    }

    /// The operation for `method` (lower or upper case) and a concrete `path`.
    pub fn operation(&self, method: &str, path: &str) -> Option<Operation<'_>> {
        let method = method.to_ascii_lowercase();
        let path = path.split('?').next().unwrap_or(path);
        for (file, doc) in &self.docs {
            let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
                continue;
            };
            for (template, item) in paths {
                if template_matches(template, path) {
                    if let Some(op) = item.get(&method) {
                        return Some(Operation {
                            file: file.clone(),
                            op,
                        });
                    }
                }
            }
        }
        None
    }

    /// Strict check of a response against the files.
    pub fn check_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<(), String> {
        let op = self
            .operation(method, path)
            .ok_or_else(|| format!("{method} {path}: operation not documented"))?;
        let responses = op
            .op
            .get("responses")
            .ok_or("operation without responses")?;
        let resp = responses
            .get(status.to_string())
            .or_else(|| responses.get("default"))
            .ok_or_else(|| format!("{method} {path}: status {status} not documented"))?;
        let (file, resp) = self.resolve(&op.file, resp)?;
        self.check_content(&file, resp.get("content"), content_type, body)
            .map_err(|e| format!("{method} {path} -> {status}: {e}"))
    }

    /// Check of a response with PROTOCOL.md's corrections (see the module doc).
    pub fn check_response_protocol(
        &self,
        method: &str,
        path: &str,
        status: u16,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<(), String> {
        let path = path.split('?').next().unwrap_or(path);
        let (method, path) = if method.eq_ignore_ascii_case("POST")
            && path.ends_with("/deployments/device/deployments/next")
        {
            ("GET", "/api/devices/v1/deployments/device/deployments/next")
        } else {
            (method, path)
        };
        match self.check_response(method, path, status, content_type, body) {
            Ok(()) => Ok(()),
            Err(strict) if status >= 400 => {
                // Errors carry the common Error body whether or not the file lists the code.
                let error_file = self.root.join("common/schemas.yaml");
                let schema = self
                    .pointer(&error_file, "/components/schemas/Error")
                    .ok_or("common Error schema missing")?
                    .clone();
                let v: Value = serde_json::from_slice(body)
                    .map_err(|e| format!("{strict}; and the error body is not JSON: {e}"))?;
                self.validate(&error_file, &schema, &v, "$")
                    .map_err(|e| format!("{strict}; and the error body: {e}"))
            }
            Err(e) => Err(e),
        }
    }

    /// Checks a request body against the operation's `requestBody` schema.
    pub fn check_request(&self, method: &str, path: &str, body: &[u8]) -> Result<(), String> {
        let op = self
            .operation(method, path)
            .ok_or_else(|| format!("{method} {path}: operation not documented"))?;
        let rb = op
            .op
            .get("requestBody")
            .ok_or("no requestBody documented")?;
        let (file, rb) = self.resolve(&op.file, rb)?;
        self.check_content(&file, rb.get("content"), Some("application/json"), body)
            .map_err(|e| format!("{method} {path} request: {e}"))
    }

    /// Validates `value` against the schema at `file#pointer`.
    pub fn check_schema(&self, file: &str, pointer: &str, value: &Value) -> Result<(), String> {
        let file = self.root.join(file);
        let schema = self
            .pointer(&file, pointer)
            .ok_or_else(|| format!("{}#{pointer} not found", file.display()))?
            .clone();
        self.validate(&file, &schema, value, "$")
    }

    fn check_content(
        &self,
        file: &Path,
        content: Option<&Value>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<(), String> {
        let documented = content.and_then(Value::as_object).filter(|m| !m.is_empty());
        let Some(media) = documented else {
            return if body.is_empty() {
                Ok(())
            } else {
                Err(format!("no body documented, got {} bytes", body.len()))
            };
        };
        if body.is_empty() {
            return Err("a body is documented, got none".into());
        }
        let ct = content_type
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let entry = media
            .get(&ct)
            .or_else(|| media.get("application/json"))
            .or_else(|| media.values().next())
            .ok_or("no media type")?;
        let Some(schema) = entry.get("schema") else {
            return Ok(());
        };
        let (sfile, schema) = self.resolve(file, schema)?;
        let schema = schema.clone();
        let value: Value = if ct.contains("json") {
            serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?
        } else {
            // A non-JSON body (the raw JWT) is checked as the string it is.
            Value::String(String::from_utf8(body.to_vec()).map_err(|_| "body is not UTF-8")?)
        };
        self.validate(&sfile, &schema, &value, "$")
    }

    fn pointer(&self, file: &Path, pointer: &str) -> Option<&Value> {
        self.docs.get(file)?.pointer(pointer)
    }

    /// Follows `$ref`s (relative files and JSON pointers) until a non-ref object.
    fn resolve<'a>(
        &'a self,
        file: &Path,
        mut v: &'a Value,
    ) -> Result<(PathBuf, &'a Value), String> {
        let mut file = file.to_path_buf();
        for _ in 0..32 {
            let Some(r) = v.get("$ref").and_then(Value::as_str) else {
                return Ok((file, v));
            };
            let (f, ptr) = r.split_once('#').unwrap_or((r, ""));
            if !f.is_empty() {
                let base = file.parent().unwrap_or(Path::new("."));
                file = base
                    .join(f)
                    .canonicalize()
                    .map_err(|e| format!("$ref {r} from {}: {e}", file.display()))?;
            }
            v = self
                .pointer(&file, ptr)
                .ok_or_else(|| format!("$ref {r}: not found in {}", file.display()))?;
        }
        Err("$ref loop".into())
    }

    /// Validates `value` against `schema` (found in `file`, for relative refs).
    pub fn validate(
        &self,
        file: &Path,
        schema: &Value,
        value: &Value,
        at: &str,
    ) -> Result<(), String> {
        let (file, schema) = self.resolve(file, schema)?;
        if value.is_null() && schema.get("nullable").and_then(Value::as_bool) == Some(true) {
            return Ok(());
        }
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for s in all {
                self.validate(&file, s, value, at)?;
            }
        }
        if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
            let n = one
                .iter()
                .filter(|s| self.validate(&file, s, value, at).is_ok())
                .count();
            if n != 1 {
                return Err(format!(
                    "{at}: matches {n} of oneOf (need exactly 1): {value}"
                ));
            }
        }
        if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
            if !any
                .iter()
                .any(|s| self.validate(&file, s, value, at).is_ok())
            {
                return Err(format!("{at}: matches none of anyOf: {value}"));
            }
        }
        if let Some(t) = schema.get("type").and_then(Value::as_str) {
            let ok = match t {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "number" => value.is_number(),
                "integer" => value.is_i64() || value.is_u64(),
                "boolean" => value.is_boolean(),
                _ => true,
            };
            if !ok {
                return Err(format!("{at}: expected {t}, got {value}"));
            }
        }
        if let Some(e) = schema.get("enum").and_then(Value::as_array) {
            if !e.contains(value) {
                return Err(format!("{at}: {value} not in enum {e:?}"));
            }
        }
        if let Some(s) = value.as_str() {
            if schema.get("format").and_then(Value::as_str) == Some("date-time")
                && mender_api::rfc3339::parse(s).is_none()
            {
                return Err(format!("{at}: {s:?} is not an RFC 3339 date-time"));
            }
            let len = s.chars().count() as u64;
            if schema
                .get("minLength")
                .and_then(Value::as_u64)
                .is_some_and(|m| len < m)
            {
                return Err(format!("{at}: shorter than minLength"));
            }
            if schema
                .get("maxLength")
                .and_then(Value::as_u64)
                .is_some_and(|m| len > m)
            {
                return Err(format!("{at}: longer than maxLength"));
            }
        }
        if let Some(obj) = value.as_object() {
            let props = schema.get("properties").and_then(Value::as_object);
            if let Some(req) = schema.get("required").and_then(Value::as_array) {
                for r in req.iter().filter_map(Value::as_str) {
                    if !obj.contains_key(r) {
                        return Err(format!("{at}: required property {r:?} missing"));
                    }
                }
            }
            for (k, v) in obj {
                let sub = format!("{at}.{k}");
                match props.and_then(|p| p.get(k)) {
                    Some(ps) => self.validate(&file, ps, v, &sub)?,
                    None => match schema.get("additionalProperties") {
                        Some(Value::Bool(false)) => {
                            return Err(format!("{at}: unexpected property {k:?}"))
                        }
                        Some(s @ Value::Object(_)) => self.validate(&file, s, v, &sub)?,
                        _ => {}
                    },
                }
            }
        }
        if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
            for (i, v) in arr.iter().enumerate() {
                self.validate(&file, items, v, &format!("{at}[{i}]"))?;
            }
        }
        Ok(())
    }
}

/// `/a/{id}/b` matches `/a/x/b`.
fn template_matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}') && !p.is_empty()) || t == p)
}
