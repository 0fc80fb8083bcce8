//! Progress of a standalone install on standard error: a redrawn bar on a terminal, plain
//! lines every 10 % otherwise (logs, pipes).

use std::io::{IsTerminal as _, Write as _};

/// Draws install progress.
#[derive(Debug)]
pub struct ProgressPrinter {
    terminal: bool,
    last_percent: Option<u64>,
    drawn: bool,
}

const BAR: usize = 30;

impl ProgressPrinter {
    /// A printer for standard error, a bar when it is a terminal.
    pub fn stderr() -> Self {
        Self::new(std::io::stderr().is_terminal())
    }

    pub fn new(terminal: bool) -> Self {
        ProgressPrinter {
            terminal,
            last_percent: None,
            drawn: false,
        }
    }

    /// The text for `done` of `total` bytes, or `None` when nothing needs printing.
    pub fn line(&mut self, done: u64, total: u64) -> Option<String> {
        let percent = (done.min(total) * 100).checked_div(total).unwrap_or(100);
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        if self.terminal {
            let filled = (percent as usize * BAR) / 100;
            self.last_percent = Some(percent);
            return Some(format!(
                "\r[{}{}] {percent:>3}% {:.1}/{:.1} MiB",
                "#".repeat(filled),
                " ".repeat(BAR - filled),
                mib(done),
                mib(total)
            ));
        }
        let step = percent / 10 * 10;
        if self.last_percent.is_some_and(|p| p >= step) {
            return None;
        }
        self.last_percent = Some(step);
        Some(format!(
            "installing: {percent}% ({:.1}/{:.1} MiB)\n",
            mib(done),
            mib(total)
        ))
    }

    pub fn update(&mut self, done: u64, total: u64) {
        if let Some(text) = self.line(done, total) {
            self.drawn = true;
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(text.as_bytes());
            let _ = err.flush();
        }
    }

    /// Ends the bar's line (a terminal only).
    pub fn finish(&mut self) {
        if self.terminal && self.drawn {
            eprintln!();
            self.drawn = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_every_ten_percent() {
        let mut p = ProgressPrinter::new(false);
        let lines: Vec<String> = (0..=100)
            .filter_map(|i| p.line(i * 1024 * 1024, 100 * 1024 * 1024))
            .collect();
        assert_eq!(lines.len(), 11, "{lines:?}");
        assert_eq!(lines[0], "installing: 0% (0.0/100.0 MiB)\n");
        assert_eq!(lines[10], "installing: 100% (100.0/100.0 MiB)\n");
        assert_eq!(p.line(5, 0).as_deref(), None, "100 % again");
    }

    #[test]
    fn a_bar_on_a_terminal() {
        let mut p = ProgressPrinter::new(true);
        let l = p.line(1 << 20, 2 << 20).unwrap_or_default();
        assert_eq!(
            l,
            format!("\r[{}{}]  50% 1.0/2.0 MiB", "#".repeat(15), " ".repeat(15))
        );
    }
}
