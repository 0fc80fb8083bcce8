//! `Content-Range` of a 206 answer (RFC 9110 §14.4), as far as a resuming download needs
//! it: `bytes <first>-<last>/<complete length>`. Pure parsing, no I/O.

/// A parsed `Content-Range: bytes first-last/total`. Invariant: `first <= last < total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    pub first: u64,
    pub last: u64,
    pub total: u64,
}

impl ContentRange {
    /// Parses the header value. An unknown total (`*`), an unsatisfied range (`*/total`),
    /// other units, `first > last` or `last >= total` are errors: a resuming client cannot
    /// check such an answer against the original length.
    pub fn parse(value: &str) -> Result<Self, String> {
        let v = value.trim();
        let rest = v
            .strip_prefix("bytes ")
            .ok_or_else(|| format!("{v:?}: not a byte range"))?
            .trim_start();
        let (range, total) = rest
            .split_once('/')
            .ok_or_else(|| format!("{v:?}: no '/'"))?;
        let num = |s: &str, what: &str| -> Result<u64, String> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("{v:?}: {what} is not a number"));
            }
            s.parse::<u64>()
                .map_err(|_| format!("{v:?}: {what} out of range"))
        };
        let total = num(total, "complete length")?;
        let (first, last) = range
            .split_once('-')
            .ok_or_else(|| format!("{v:?}: no range"))?;
        let (first, last) = (num(first, "first byte")?, num(last, "last byte")?);
        if first > last || last >= total {
            return Err(format!("{v:?}: range not inside the complete length"));
        }
        Ok(ContentRange { first, last, total })
    }

    /// Bytes in the range.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Never true (the invariant holds at least one byte); present for clippy's sake.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// The `Range` header asking for everything from `offset` on: `bytes=<offset>-`.
pub fn range_from(offset: u64) -> String {
    format!("bytes={offset}-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid() {
        assert_eq!(
            ContentRange::parse("bytes 100-199/200").unwrap(),
            ContentRange {
                first: 100,
                last: 199,
                total: 200
            }
        );
        assert_eq!(ContentRange::parse(" bytes 0-0/1 ").unwrap().len(), 1);
        assert_eq!(range_from(4096), "bytes=4096-");
    }

    #[test]
    fn refuses_invalid() {
        for bad in [
            "bytes 100-199/*",
            "bytes */200",
            "items 0-1/2",
            "bytes 5-4/10",
            "bytes 0-10/10",
            "bytes -1-5/10",
            "bytes 0-5",
            "bytes a-5/10",
            "bytes 0-5/99999999999999999999999",
            "bytes +1-5/10",
            "",
        ] {
            assert!(ContentRange::parse(bad).is_err(), "{bad}");
        }
    }
}
