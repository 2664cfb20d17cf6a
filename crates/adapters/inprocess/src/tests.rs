//! The in-process log against the shared event-log conformance suite, plus
//! what only this adapter does (sweeping idle channels).

use std::time::Duration;

use async_trait::async_trait;
use colloquy_conformance::event_log::{Harness, KeptLimits};
use colloquy_domain::{MessageId, SessionId};
use colloquy_ports::{EventKind, EventLog, StartAt};

use crate::{InProcessEventLog, LogLimits};

/// Every in-process log stands alone: there is nothing to share or clean up.
struct InProcess;

#[async_trait]
impl Harness for InProcess {
    type Log = InProcessEventLog;

    async fn log(&self, limits: KeptLimits) -> InProcessEventLog {
        InProcessEventLog::new(LogLimits {
            retention: limits.retention,
            max_events: limits.max_events,
            max_bytes: limits.max_bytes,
        })
    }

    async fn kept(&self, log: &InProcessEventLog, session: SessionId) -> (usize, usize) {
        log.kept(session)
    }

    async fn restart(&self, log: InProcessEventLog, limits: KeptLimits) -> InProcessEventLog {
        // A process that restarts keeps nothing of its memory.
        drop(log);
        self.log(limits).await
    }

    async fn settle(&self, _log: &InProcessEventLog, _session: SessionId) {
        // Subscribers read the shared log itself: nothing runs behind them.
    }
}

colloquy_conformance::event_log_conformance!(InProcess);

#[tokio::test]
async fn idle_channels_without_subscribers_are_swept() {
    let log = InProcessEventLog::new(LogLimits {
        retention: Duration::from_millis(20),
        ..LogLimits::default()
    });
    let delta = |text: &str| EventKind::MessageDelta {
        message_id: MessageId::new(),
        delta: text.to_owned(),
    };
    let kept = SessionId::new();
    let _subscriber = log.subscribe(kept, StartAt::Live).await.unwrap();
    log.publish(SessionId::new(), delta("x")).await.unwrap();
    assert_eq!(log.channel_count(), 2);
    tokio::time::sleep(Duration::from_millis(40)).await;
    log.publish(SessionId::new(), delta("y")).await.unwrap();
    assert_eq!(
        log.channel_count(),
        2,
        "the idle one went, the subscribed one stayed"
    );
}
