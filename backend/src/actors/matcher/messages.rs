//! What the matcher's shards are sent.

use super::in_flight::Token;
use crate::domain::TenantId;
use crate::matching::Text;
use crate::matching::session::{GoalId, SessionEvent};
use actix::Message;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Dropped by the last piece of work holding it; its receiver then resolves.
pub type Done = Arc<oneshot::Sender<()>>;

/// A session: every event of one tenant that carries one (key name, key value).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionKey {
    pub tenant: TenantId,
    pub name: Text,
    pub value: Text,
}

/// One piece of work for one session.
#[derive(Debug)]
pub enum Work {
    /// A stored event to add to the session and match.
    Event {
        session: SessionKey,
        event: SessionEvent,
        /// Keeps the matching checkpoint behind the event until it is matched. Held, never
        /// read: dropping it is the signal.
        #[allow(dead_code)]
        token: Arc<Token>,
        #[allow(dead_code)]
        done: Option<Done>,
    },
    /// Settle every conversion of the session for one goal again (the goal changed).
    Reevaluate {
        session: SessionKey,
        goal_id: GoalId,
        #[allow(dead_code)]
        done: Done,
    },
}

impl Work {
    pub fn session(&self) -> &SessionKey {
        match self {
            Work::Event { session, .. } | Work::Reevaluate { session, .. } => session,
        }
    }
}

/// Work for sessions this shard owns.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Process(pub Vec<Work>);

/// Forget what is stored for a goal in every resident session of the tenant: the goal
/// changed and its attribution rows were deleted with the change.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct ForgetGoal {
    pub tenant: TenantId,
    pub goal_id: GoalId,
}

/// Forget sessions whose events were erased: drop them from memory and delete their hot
/// copies, once no round is in flight (a round that loaded one before the erasure must end
/// first). `done` is answered when they are gone.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Purge {
    pub sessions: Vec<SessionKey>,
    pub done: oneshot::Sender<()>,
}

/// Finish the round in flight, then stop (and stop the shard's thread).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Shutdown;
