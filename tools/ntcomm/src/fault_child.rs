//! One child process of the fault suite (`ntcomm-fault-child ROLE`): a
//! channel's client (ROLE is the channel's name) or a peer server (ROLE is
//! the channel's [`Channel::peer_role`]), started and killed by
//! `ntcomm faults`. The workloads themselves are the channels' own
//! (`crate::channel::*`).

use std::io::Write as _;
use std::process::ExitCode;

use crate::channel::Channel;
use crate::rng::Rng;

/// Runs child `role`; it prints `ready` once it works, then loops until
/// killed. Exits 3 after printing `error: ...` when the driver fails it (e.g.
/// because the driver stopped), 4 after `wrong: ...` when an answer is wrong,
/// 2 for an unknown role.
pub fn run(role: &str, seed: u64, instance: u32, stall: bool) -> ExitCode {
    let mut rng = Rng::new(seed);
    let client = Channel::ALL.into_iter().find(|c| c.name() == role);
    let peer = Channel::ALL.into_iter().find(|c| c.peer_role() == Some(role));
    let r = match (client, peer) {
        (Some(c), _) => c.client_workload(&mut rng),
        (None, Some(c)) => c.peer_workload(&mut rng, instance, stall),
        (None, None) => {
            let peers: Vec<&str> = Channel::ALL.into_iter().filter_map(Channel::peer_role).collect();
            let clients: Vec<&str> = Channel::ALL.into_iter().map(Channel::name).collect();
            eprintln!("unknown role {role:?}: one of {} (clients), {} (peers)", clients.join(", "), peers.join(", "));
            return ExitCode::from(2);
        }
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(ChildError::Failed(e)) => {
            println!("error: {e}");
            ExitCode::from(3)
        }
        Err(ChildError::Wrong(e)) => {
            println!("wrong: {e}");
            ExitCode::from(4)
        }
    }
}

/// Why a child's loop ended.
pub enum ChildError {
    /// The driver refused or went away.
    Failed(String),
    /// An answer was wrong.
    Wrong(String),
}

impl From<ntcomm_um::Error> for ChildError {
    fn from(e: ntcomm_um::Error) -> Self {
        ChildError::Failed(e.to_string())
    }
}

/// A child's loop: it only returns when something failed.
pub type ChildResult = Result<(), ChildError>;

/// Prints a line the suite waits for (`ready`, `holding`), at once.
pub fn announce(word: &str) {
    println!("{word}");
    let _ = std::io::stdout().flush();
}

/// `ready`, printed once: after the first exchange that worked.
#[derive(Default)]
pub struct Ready(bool);

impl Ready {
    /// Announces `ready` the first time.
    pub fn now(&mut self) {
        if !self.0 {
            announce("ready");
            self.0 = true;
        }
    }
}
