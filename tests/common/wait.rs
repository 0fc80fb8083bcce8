//! The tests' one way to wait: poll a condition until it holds or a limit passes.
//!
//! A condition answers with a [`Ready`]: `true` / `Some(value)` / `Ok(value)` when it holds;
//! `false` / `None` / `Err(seen)` when not yet (`seen`, what it found last, goes into the
//! failure message).

use std::fmt::{Debug, Display};
use std::future::Future;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// How often a condition is polled.
pub const POLL: Duration = Duration::from_millis(50);

/// What one poll of a condition found.
pub trait Ready {
    type Value;
    /// The value once the condition holds; else what was seen (if anything), for the
    /// failure message.
    fn ready(self) -> Result<Self::Value, Option<String>>;
}

impl Ready for bool {
    type Value = ();
    fn ready(self) -> Result<(), Option<String>> {
        if self {
            Ok(())
        } else {
            Err(None)
        }
    }
}

impl<T> Ready for Option<T> {
    type Value = T;
    fn ready(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

impl<T, E: Debug> Ready for Result<T, E> {
    type Value = T;
    fn ready(self) -> Result<T, Option<String>> {
        self.map_err(|seen| Some(format!("{seen:?}")))
    }
}

/// Polls `f` every [`POLL`] until it is ready; after `limit`, `Err` with what it saw last.
pub async fn poll<R, F, Fut>(limit: Duration, mut f: F) -> Result<R::Value, Option<String>>
where
    R: Ready,
    F: FnMut() -> Fut,
    Fut: Future<Output = R>,
{
    let deadline = Instant::now() + limit;
    loop {
        let seen = f().await.ready();
        if seen.is_ok() || Instant::now() >= deadline {
            return seen;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `f` until it is ready and returns its value; panics naming `what` (formatted only
/// then) and what `f` saw last after `limit`.
pub async fn wait_for<R, F, Fut>(limit: Duration, what: impl Display, f: F) -> R::Value
where
    R: Ready,
    F: FnMut() -> Fut,
    Fut: Future<Output = R>,
{
    poll(limit, f)
        .await
        .unwrap_or_else(|seen| timed_out(limit, &what, seen))
}

/// [`wait_for`] with a synchronous condition (a file exists, a child exited).
pub async fn until<R: Ready>(
    limit: Duration,
    what: impl Display,
    mut ok: impl FnMut() -> R,
) -> R::Value {
    wait_for(limit, what, || std::future::ready(ok())).await
}

/// [`poll`] for code that must not yield to the runtime: sleeps the thread between polls.
pub fn poll_blocking<R: Ready>(
    limit: Duration,
    mut f: impl FnMut() -> R,
) -> Result<R::Value, Option<String>> {
    let deadline = Instant::now() + limit;
    loop {
        let seen = f().ready();
        if seen.is_ok() || Instant::now() >= deadline {
            return seen;
        }
        std::thread::sleep(POLL);
    }
}

/// [`wait_for`] for code that must not yield to the runtime: sleeps the thread between polls.
pub fn wait_for_blocking<R: Ready>(
    limit: Duration,
    what: impl Display,
    f: impl FnMut() -> R,
) -> R::Value {
    poll_blocking(limit, f).unwrap_or_else(|seen| timed_out(limit, &what, seen))
}

/// The exit status of `child` once it exited, waiting at most `limit`; `None` while it runs.
pub fn exited_within(child: &mut std::process::Child, limit: Duration) -> Option<ExitStatus> {
    poll_blocking(limit, || child.try_wait().expect("try_wait")).ok()
}

/// Waits at most `limit` for `child` to exit, then kills it; its exit status if it exited
/// by itself.
pub fn stop_within(child: &mut std::process::Child, limit: Duration) -> Option<ExitStatus> {
    let status = exited_within(child, limit);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    status
}

/// A description made only when it is shown (a log read at the timeout, not at each poll).
pub struct Lazy<F>(pub F);

impl<F: Fn() -> String> Display for Lazy<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&(self.0)())
    }
}

fn timed_out(limit: Duration, what: &dyn Display, seen: Option<String>) -> ! {
    match seen {
        Some(seen) => panic!("timed out after {limit:?} waiting for {what}; last seen: {seen}"),
        None => panic!("timed out after {limit:?} waiting for {what}"),
    }
}
