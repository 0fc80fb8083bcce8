//! Compression of the header and data members, chosen by the member's file extension.

use std::pin::Pin;

use async_compression::tokio::bufread::{GzipDecoder, XzDecoder, ZstdDecoder};
use tokio::io::{AsyncBufRead, AsyncRead};

/// A boxed byte stream, the type every decoded member is read through.
pub type BoxRead = Pin<Box<dyn AsyncRead + Send>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    /// mender-artifact's `lzma` compression writes xz streams (`.xz`).
    Xz,
    Zstd,
}

impl Compression {
    const ALL: [Compression; 4] = [
        Compression::None,
        Compression::Gzip,
        Compression::Xz,
        Compression::Zstd,
    ];

    /// The suffix after `.tar` in member names (`""`, `".gz"`, `".xz"`, `".zst"`).
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Xz => ".xz",
            Compression::Zstd => ".zst",
        }
    }

    /// Maps the suffix after `.tar` back (the inverse of [`suffix`](Self::suffix)).
    pub fn from_suffix(suffix: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.suffix() == suffix)
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
        }
    }

    /// Wraps `input` in the matching decoder. Concatenated streams are decoded as one;
    /// anything after the last stream that is not another valid stream is an error.
    /// `decoder_memory` caps the decoder's memory: the xz memory limit (dictionary included)
    /// and the largest zstd window (the power of two at or below it).
    pub fn decoder<R>(self, input: R, decoder_memory: u64) -> BoxRead
    where
        R: AsyncBufRead + Send + 'static,
    {
        match self {
            Compression::None => Box::pin(input),
            Compression::Gzip => {
                let mut d = GzipDecoder::new(input);
                d.multiple_members(true);
                Box::pin(d)
            }
            Compression::Xz => {
                let mut d = XzDecoder::with_mem_limit(input, decoder_memory);
                d.multiple_members(true);
                Box::pin(d)
            }
            Compression::Zstd => {
                let window_log = (63 - decoder_memory.max(1).leading_zeros()).clamp(10, 31);
                let mut d = ZstdDecoder::with_params(
                    input,
                    &[async_compression::zstd::DParameter::window_log_max(
                        window_log,
                    )],
                );
                d.multiple_members(true);
                Box::pin(d)
            }
        }
    }
}
