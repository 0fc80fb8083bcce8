//! What the simulator saw (in memory, bounded): device API requests, for tests that check
//! what a client sends, and downloads, for tests that count re-fetched bytes.

use std::collections::VecDeque;

use serde::Serialize;

/// Most requests and downloads kept; older ones are dropped.
pub const MAX_RECORDS: usize = 1000;

/// One device API request.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    pub seq: u64,
    pub time: String,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub content_type: Option<String>,
    pub content_length: Option<u64>,
    pub chunked: bool,
    pub authorization: bool,
    pub body_len: usize,
    /// The body when it is JSON (the auth body is kept; it holds no secret).
    pub body: Option<serde_json::Value>,
    pub status: u16,
}

/// One download request of a presigned link.
#[derive(Debug, Clone, Serialize)]
pub struct DownloadRecord {
    pub seq: u64,
    pub time: String,
    pub artifact_id: String,
    pub deployment_id: String,
    pub device_id: String,
    pub range: Option<String>,
    /// The real S3 refuses presigned requests that also carry Authorization.
    pub authorization_sent: bool,
    pub status: u16,
    pub start: u64,
    /// Bytes of the body actually sent (updated while streaming).
    pub bytes_sent: u64,
    pub cut_at: Option<u64>,
    pub complete: bool,
}

/// A bounded log.
#[derive(Debug)]
pub struct Ring<T> {
    items: VecDeque<T>,
    next_seq: u64,
}

impl<T> Default for Ring<T> {
    fn default() -> Self {
        Ring {
            items: VecDeque::new(),
            next_seq: 1,
        }
    }
}

impl<T: Clone> Ring<T> {
    /// Adds an item built with its sequence number; returns that number.
    pub fn push(&mut self, make: impl FnOnce(u64) -> T) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.items.len() >= MAX_RECORDS {
            self.items.pop_front();
        }
        self.items.push_back(make(seq));
        seq
    }

    pub fn all(&self) -> Vec<T> {
        self.items.iter().cloned().collect()
    }

    pub fn clear(&mut self) {
        self.items.clear();
    }

    /// Mutable access to the item with `seq` (if still kept).
    pub fn find_mut(&mut self, pred: impl Fn(&T) -> bool) -> Option<&mut T> {
        self.items.iter_mut().rev().find(|t| pred(t))
    }
}
