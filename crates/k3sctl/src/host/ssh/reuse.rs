//! A reused master is taken on trust until its first channel opens.
//!
//! A master left by an earlier run may have lost its host (a host gone silently while the master
//! lived answers nothing, and the master notices only after its keepalives run out). Asking it
//! with a command of its own before the real work costs a round trip per host, so instead the
//! first channel opened on a reused master is the check: OpenSSH's master confirms a new session
//! to its client only once the host has confirmed the channel, and nothing runs on the host
//! before that confirmation. So:
//!
//! - the first channel's opening is bounded (by the connect timeout, at most 5 s); when it opens,
//!   the master is verified and the command proceeds: no extra round trip;
//! - when it fails or does not open in time, the command has not started on the host and its
//!   stdin has not been read: the master is retired, a fresh one is started (same handshake,
//!   lock and classified errors as a cold connect) and the channel is opened once more on it. A
//!   second failure is reported as it is;
//! - once a channel has opened, nothing is ever retried: a connection lost while a command runs
//!   is a [`HostError::Session`], as on a fresh master.
//!
//! Opening channels waits while another task of this transport verifies the master, so
//! concurrent first commands never reconnect twice.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use openssh::{Session, Stdio};

use super::super::error::HostError;
use super::SshTransport;
use super::master::{self, Master};

/// The longest wait for a reused master's first channel.
const VERIFY_LIMIT: Duration = Duration::from_secs(5);

/// The master in use, replaceable while the transport is shared.
#[derive(Debug)]
pub(super) struct MasterCell {
    current: RwLock<Arc<Master>>,
    /// True once a channel opened on the current master (always for a fresh master).
    verified: AtomicBool,
    /// Held while the current master is being verified (or replaced).
    turn: tokio::sync::Mutex<()>,
}

impl MasterCell {
    /// A cell holding `master`: verified unless an earlier run started it.
    pub(super) fn new(master: Master) -> Self {
        Self {
            verified: AtomicBool::new(!master.reused),
            current: RwLock::new(Arc::new(master)),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    /// The master in use now.
    pub(super) fn current(&self) -> Arc<Master> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn is_verified(&self) -> bool {
        self.verified.load(Ordering::Acquire)
    }

    fn swap(&self, master: Master) -> Arc<Master> {
        let master = Arc::new(master);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&master);
        master
    }
}

impl SshTransport {
    /// Opens a channel with `open` (which spawns a command on the session it is given), on a
    /// master that answers: see the module documentation for how a reused master is verified and
    /// replaced. `what` names the command in errors.
    pub(super) async fn open_channel<T, F, Fut>(&self, what: &str, open: F) -> Result<T, HostError>
    where
        F: Fn(Arc<Session>) -> Fut,
        Fut: Future<Output = Result<T, openssh::Error>>,
    {
        let cell = &self.master;
        if !cell.is_verified() {
            let _turn = cell.turn.lock().await;
            if !cell.is_verified() {
                return self.open_verifying(what, &open).await;
            }
        }
        open(Arc::clone(&cell.current().session))
            .await
            .map_err(|e| self.session_err(what, &e))
    }

    /// Makes sure the master answers (for requests that open no channel, like a port forward):
    /// a no-op once verified, else `true` run through [`open_channel`](Self::open_channel).
    pub async fn verify(&self) -> Result<(), HostError> {
        if self.master.is_verified() {
            return Ok(());
        }
        let what = "checking the ssh connection";
        let child = self
            .open_channel(what, |session| async move {
                session
                    .arc_raw_command("true")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .await
            })
            .await?;
        child
            .wait()
            .await
            .map(drop)
            .map_err(|e| self.session_err(what, &e))
    }

    /// The first channel on an unverified master (the caller holds the turn).
    async fn open_verifying<T, F, Fut>(&self, what: &str, open: &F) -> Result<T, HostError>
    where
        F: Fn(Arc<Session>) -> Fut,
        Fut: Future<Output = Result<T, openssh::Error>>,
    {
        let limit = self.target.connect_timeout.min(VERIFY_LIMIT);
        let master = self.master.current();
        match self.open_within(limit, &master, what, open).await {
            Ok(opened) => {
                self.master.verified.store(true, Ordering::Release);
                return Ok(opened);
            }
            Err(e) if !master.reused => return Err(e),
            Err(e) => tracing::debug!("reused ssh master: {e}; starting a fresh one"),
        }
        // Nothing ran on the host: a fresh master, and the same channel once more.
        let fresh = self
            .master
            .swap(master::replace(&self.target, &self.paths, &master).await?);
        let opened = if fresh.reused {
            // Another run replaced the master meanwhile: it has to answer in time too.
            self.open_within(limit, &fresh, what, open).await?
        } else {
            self.master.verified.store(true, Ordering::Release);
            open(Arc::clone(&fresh.session))
                .await
                .map_err(|e| self.session_err(what, &e))?
        };
        self.master.verified.store(true, Ordering::Release);
        Ok(opened)
    }

    /// Opens the channel on `master`, giving up after `limit`.
    async fn open_within<T, F, Fut>(
        &self,
        limit: Duration,
        master: &Master,
        what: &str,
        open: &F,
    ) -> Result<T, HostError>
    where
        F: Fn(Arc<Session>) -> Fut,
        Fut: Future<Output = Result<T, openssh::Error>>,
    {
        match tokio::time::timeout(limit, open(Arc::clone(&master.session))).await {
            Ok(opened) => opened.map_err(|e| self.session_err(what, &e)),
            Err(_) => Err(self.no_answer(what, limit)),
        }
    }

    fn no_answer(&self, what: &str, limit: Duration) -> HostError {
        HostError::Session {
            host: self.target.name.clone(),
            what: what.to_owned(),
            detail: format!(
                "the ssh master connection did not open a channel within {}s",
                limit.as_secs_f64()
            ),
        }
    }
}
