//! Who is connected: one deviceconnect link per device (a new connection replaces the old
//! one, which is told to close) and the terminal sessions opened through the management
//! API (each tied to the link it was opened on; at most [`MAX_SESSIONS`], the oldest
//! finished ones forgotten first).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::{mpsc, oneshot};

use super::protomsg::ProtoMsg;
use super::session::{Session, SessionState};

/// Sessions remembered at once (all devices).
pub const MAX_SESSIONS: usize = 64;
/// Messages queued to one device before a sender waits.
const QUEUE: usize = 64;

struct Link {
    generation: u64,
    tx: mpsc::Sender<ProtoMsg>,
    close: Option<oneshot::Sender<()>>,
}

struct Entry {
    device: String,
    generation: u64,
    seq: u64,
    session: Session,
}

#[derive(Default)]
struct Inner {
    links: HashMap<String, Link>,
    sessions: HashMap<String, Entry>,
    next: u64,
}

/// The links and sessions of one simulator.
#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
}

/// What the socket task of a new link gets.
pub struct Attached {
    pub generation: u64,
    /// Messages to send to the device.
    pub outgoing: mpsc::Receiver<ProtoMsg>,
    /// Fires when a newer connection replaced this one or the server stops.
    pub close: oneshot::Receiver<()>,
}

/// A session refused: the table is full of open sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Full;

fn close_sessions(inner: &Inner, device: &str, generation: u64) {
    for e in inner.sessions.values() {
        if e.device == device && e.generation == generation {
            e.session.set_state(SessionState::Closed);
        }
    }
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new link for `device`, closing the previous one and its sessions.
    pub fn attach(&self, device: &str) -> Attached {
        let (tx, outgoing) = mpsc::channel(QUEUE);
        let (close_tx, close) = oneshot::channel();
        let mut inner = self.lock();
        inner.next += 1;
        let generation = inner.next;
        let old = inner.links.insert(
            device.to_string(),
            Link {
                generation,
                tx,
                close: Some(close_tx),
            },
        );
        if let Some(mut old) = old {
            tracing::info!(
                device,
                "deviceconnect: a new connection replaces the old one"
            );
            if let Some(c) = old.close.take() {
                let _ = c.send(());
            }
            close_sessions(&inner, device, old.generation);
        }
        Attached {
            generation,
            outgoing,
            close,
        }
    }

    /// Forgets link `generation` of `device` (if still current) and closes its sessions.
    pub fn detach(&self, device: &str, generation: u64) {
        let mut inner = self.lock();
        if inner
            .links
            .get(device)
            .is_some_and(|l| l.generation == generation)
        {
            inner.links.remove(device);
        }
        close_sessions(&inner, device, generation);
    }

    /// Tells every link to close (the server stops).
    pub fn close_all(&self) {
        let mut inner = self.lock();
        for link in inner.links.values_mut() {
            if let Some(c) = link.close.take() {
                let _ = c.send(());
            }
        }
    }

    /// The sender and generation of `device`'s current link.
    pub fn link(&self, device: &str) -> Option<(mpsc::Sender<ProtoMsg>, u64)> {
        self.lock()
            .links
            .get(device)
            .map(|l| (l.tx.clone(), l.generation))
    }

    /// Remembers a new session `sid` of `device` on link `generation`.
    pub fn add_session(&self, device: &str, generation: u64, sid: &str) -> Result<Session, Full> {
        let mut inner = self.lock();
        if inner.sessions.len() >= MAX_SESSIONS {
            let oldest = inner
                .sessions
                .iter()
                .filter(|(_, e)| e.session.state().is_final())
                .min_by_key(|(_, e)| e.seq)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    inner.sessions.remove(&k);
                }
                None => return Err(Full),
            }
        }
        inner.next += 1;
        let session = Session::new();
        let seq = inner.next;
        inner.sessions.insert(
            sid.to_string(),
            Entry {
                device: device.to_string(),
                generation,
                seq,
                session: session.clone(),
            },
        );
        Ok(session)
    }

    /// Session `sid` of `device`, with the link generation it belongs to.
    pub fn session(&self, device: &str, sid: &str) -> Option<(Session, u64)> {
        self.lock()
            .sessions
            .get(sid)
            .filter(|e| e.device == device)
            .map(|e| (e.session.clone(), e.generation))
    }

    /// Session `sid` if it belongs to `device`'s link `generation` (messages from a device
    /// only reach its own sessions).
    pub fn session_on(&self, device: &str, generation: u64, sid: &str) -> Option<Session> {
        self.lock()
            .sessions
            .get(sid)
            .filter(|e| e.device == device && e.generation == generation)
            .map(|e| e.session.clone())
    }

    /// The ids and states of `device`'s sessions, oldest first.
    pub fn sessions_of(&self, device: &str) -> Vec<(String, SessionState)> {
        let inner = self.lock();
        let mut list: Vec<_> = inner
            .sessions
            .iter()
            .filter(|(_, e)| e.device == device)
            .map(|(k, e)| (e.seq, k.clone(), e.session.state()))
            .collect();
        list.sort_by_key(|(seq, _, _)| *seq);
        list.into_iter().map(|(_, k, s)| (k, s)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_link_replaces_the_old_and_closes_its_sessions() {
        let r = Registry::default();
        let mut a = r.attach("d");
        let s = r.add_session("d", a.generation, "s1").unwrap();
        s.set_state(SessionState::Open);
        let b = r.attach("d");
        assert!(a.close.try_recv().is_ok());
        assert_eq!(s.state(), SessionState::Closed);
        assert_eq!(r.link("d").unwrap().1, b.generation);
        // The old task detaching does not remove the new link.
        r.detach("d", a.generation);
        assert_eq!(r.link("d").unwrap().1, b.generation);
        assert!(r.session_on("d", b.generation, "s1").is_none());
        assert!(r.session("other", "s1").is_none());
        r.detach("d", b.generation);
        assert!(r.link("d").is_none());
    }

    #[test]
    fn the_session_table_is_bounded() {
        let r = Registry::default();
        let a = r.attach("d");
        let first = r.add_session("d", a.generation, "s0").unwrap();
        for i in 1..MAX_SESSIONS {
            r.add_session("d", a.generation, &format!("s{i}")).unwrap();
        }
        assert_eq!(r.add_session("d", a.generation, "x").err(), Some(Full));
        first.set_state(SessionState::Stopped(String::new()));
        r.add_session("d", a.generation, "x").unwrap();
        assert!(r.session("d", "s0").is_none());
        assert_eq!(r.sessions_of("d").len(), MAX_SESSIONS);
    }
}
