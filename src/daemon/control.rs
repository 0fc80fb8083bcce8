//! What the daemon listens to while it waits or works: the signals (SIGUSR1 = check now,
//! SIGUSR2 = inventory now, SIGTERM / SIGINT = stop), the systemd watchdog and the
//! service manager's notifications.
//!
//! Invariants: after a stop signal no wait starts again ([`Control::wait`] returns
//! [`Wake::Stop`] at once); a job running when it arrives gets `grace` more and is then
//! dropped ([`Control::guard`] returns `None`); while anything is awaited, the watchdog is
//! fed.

use std::future::Future;
use std::time::Duration;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::time::{sleep_until, Instant, Interval};

use super::notify::{watchdog_interval, Notifier};
use super::DaemonError;

/// What woke the idle daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wake {
    Check,
    Inventory,
    Stop,
}

/// Signals, the watchdog and systemd: everything the daemon listens to while it waits or
/// works.
pub(super) struct Control {
    usr1: Signal,
    usr2: Signal,
    term: Signal,
    int: Signal,
    notifier: Option<Notifier>,
    watchdog: Option<Interval>,
    pub(super) grace: Duration,
    pub(super) stopping: bool,
    pub(super) want_check: bool,
    pub(super) want_inventory: bool,
}

enum Event<T> {
    Done(T),
    Ping,
    Wake(Wake),
    GraceOver,
}

async fn tick(watchdog: &mut Option<Interval>) {
    match watchdog {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

impl Control {
    pub(super) fn new(grace: Duration) -> Result<Self, DaemonError> {
        let sig = |k| signal(k).map_err(DaemonError::Signals);
        let notifier = Notifier::from_env();
        let watchdog = notifier.as_ref().and(watchdog_interval()).map(|every| {
            tracing::info!(every = ?every, "feeding the systemd watchdog");
            let mut i = tokio::time::interval(every);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        Ok(Control {
            usr1: sig(SignalKind::user_defined1())?,
            usr2: sig(SignalKind::user_defined2())?,
            term: sig(SignalKind::terminate())?,
            int: sig(SignalKind::interrupt())?,
            notifier,
            watchdog,
            grace,
            stopping: false,
            want_check: false,
            want_inventory: false,
        })
    }

    pub(super) fn notify(&self, message: &str) {
        if let Some(n) = &self.notifier {
            n.notify(message);
        }
    }

    /// Waits until `until` (`None`) or a signal.
    pub(super) async fn wait(&mut self, until: Instant) -> Option<Wake> {
        if self.stopping {
            return Some(Wake::Stop);
        }
        loop {
            let ev: Event<()> = tokio::select! {
                _ = sleep_until(until) => Event::Done(()),
                _ = tick(&mut self.watchdog) => Event::Ping,
                _ = self.usr1.recv() => Event::Wake(Wake::Check),
                _ = self.usr2.recv() => Event::Wake(Wake::Inventory),
                _ = self.term.recv() => Event::Wake(Wake::Stop),
                _ = self.int.recv() => Event::Wake(Wake::Stop),
            };
            match ev {
                Event::Done(()) | Event::GraceOver => return None,
                Event::Ping => self.notify("WATCHDOG=1"),
                Event::Wake(w) => {
                    if w == Wake::Stop {
                        tracing::info!("stop signal received");
                        self.stopping = true;
                    }
                    return Some(w);
                }
            }
        }
    }

    /// Runs `work` to its end while feeding the watchdog and noting signals (check and
    /// inventory requests are kept for afterwards). After a stop signal `work` gets
    /// `grace` more, then it is dropped and `None` returned.
    pub(super) async fn guard<F: Future>(&mut self, work: F) -> Option<F::Output> {
        tokio::pin!(work);
        let mut deadline = self.stopping.then(|| Instant::now() + self.grace);
        loop {
            let ev = tokio::select! {
                out = &mut work => Event::Done(out),
                _ = tick(&mut self.watchdog) => Event::Ping,
                _ = self.usr1.recv() => Event::Wake(Wake::Check),
                _ = self.usr2.recv() => Event::Wake(Wake::Inventory),
                _ = self.term.recv() => Event::Wake(Wake::Stop),
                _ = self.int.recv() => Event::Wake(Wake::Stop),
                _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => Event::GraceOver,
            };
            match ev {
                Event::Done(out) => return Some(out),
                Event::Ping => self.notify("WATCHDOG=1"),
                Event::Wake(Wake::Check) => self.want_check = true,
                Event::Wake(Wake::Inventory) => self.want_inventory = true,
                Event::Wake(Wake::Stop) => {
                    if deadline.is_none() {
                        tracing::info!(grace = ?self.grace, "stop signal received; letting the current step finish");
                        self.stopping = true;
                        deadline = Some(Instant::now() + self.grace);
                    }
                }
                Event::GraceOver => {
                    tracing::warn!("the current step did not finish in time; stopping anyway (start-up resumes it)");
                    return None;
                }
            }
        }
    }
}
