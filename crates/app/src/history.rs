//! The recent history of the conversations that ran lately, kept between
//! their turns so that the next turn of a running conversation does not
//! read and walk its branch in the store again.
//!
//! An entry is the newest `history_limit` messages of a session's branch,
//! oldest first, and is valid exactly while that branch still ends at the
//! entry's last message: a turn looks its entry up with the session's head
//! as just read from the store, so a turn that ran elsewhere (another
//! replica), a branch switch or an edit, all of which move the head, make
//! it miss and read the store instead. This holds because a message whose
//! final state is stored never changes again (see
//! [`ChatRepository::update_message`](colloquy_ports::ChatRepository::update_message))
//! and ids are made by the service, never reused. The one exception, a
//! client's tool results recorded on a reply that ended on its calls, is
//! ruled out by never keeping a history that holds an unanswered call.
//!
//! Memory is bounded by a budget of bytes over all entries, the least
//! recently used evicted first.

use std::sync::{Arc, Mutex, PoisonError};

use colloquy_domain::{Message, MessageId, SessionId};
use lru::LruCache;

/// The most the kept histories may take, all sessions together. At the
/// default `history_limit` (200) of short chat messages (~250 bytes each
/// with their bookkeeping) this keeps about 650 conversations.
pub(crate) const HISTORY_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// A session's recent branch, oldest first, shared by the cache and the
/// turn that reads it. A `Vec` behind the `Arc` (not a slice), so that the
/// turn, once it holds the only reference, takes the messages back to make
/// the next entry without copying them (`Arc::try_unwrap`).
pub(crate) type SharedHistory = Arc<Vec<Message>>;

/// One session's recent branch.
struct Entry {
    history: SharedHistory,
    bytes: usize,
}

struct Entries {
    sessions: LruCache<SessionId, Entry>,
    bytes: usize,
}

/// See the module's documentation.
pub(crate) struct HistoryCache {
    entries: Mutex<Entries>,
    budget: usize,
}

impl std::fmt::Debug for HistoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries = self.lock();
        f.debug_struct("HistoryCache")
            .field("sessions", &entries.sessions.len())
            .field("bytes", &entries.bytes)
            .field("budget", &self.budget)
            .finish()
    }
}

impl Default for HistoryCache {
    fn default() -> Self {
        Self::with_budget(HISTORY_CACHE_BYTES)
    }
}

impl HistoryCache {
    pub(crate) fn with_budget(budget: usize) -> Self {
        Self {
            entries: Mutex::new(Entries {
                sessions: LruCache::unbounded(),
                bytes: 0,
            }),
            budget,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The kept history of `session` when its branch still ends at `head`.
    pub(crate) fn get(&self, session: SessionId, head: Option<MessageId>) -> Option<SharedHistory> {
        let head = head?;
        let mut entries = self.lock();
        let entry = entries.sessions.get(&session)?;
        let ends_at_head = entry.history.last().is_some_and(|last| last.id == head);
        if ends_at_head {
            Some(Arc::clone(&entry.history))
        } else {
            // The branch moved on without this replica: the entry is dead.
            let stale = entries.sessions.pop(&session);
            entries.bytes -= stale.map_or(0, |entry| entry.bytes);
            None
        }
    }

    /// Keeps the newest `limit` messages of `branch` (the session's whole
    /// branch as far as it is known, oldest first, ending at its head) for
    /// the session's next turn, unless one of them may still change: then
    /// whatever was kept is dropped.
    pub(crate) fn keep(&self, session: SessionId, mut branch: Vec<Message>, limit: usize) {
        let start = branch.len().saturating_sub(limit);
        branch.drain(..start);
        let recent = branch;
        if recent.is_empty() || !recent.iter().all(is_settled) {
            self.forget(session);
            return;
        }
        let bytes = recent.iter().map(footprint).sum::<usize>();
        let mut entries = self.lock();
        if let Some(old) = entries.sessions.pop(&session) {
            entries.bytes -= old.bytes;
        }
        if bytes > self.budget {
            return;
        }
        while entries.bytes + bytes > self.budget {
            match entries.sessions.pop_lru() {
                Some((_, evicted)) => entries.bytes -= evicted.bytes,
                None => break,
            }
        }
        // Moved in, not copied: a branch is the messages' texts.
        let history = Arc::new(recent);
        entries.bytes += bytes;
        entries.sessions.put(session, Entry { history, bytes });
    }

    /// Drops what is kept of `session`: it was deleted, or its turn did not
    /// end in a state the cache can vouch for.
    pub(crate) fn forget(&self, session: SessionId) {
        let mut entries = self.lock();
        if let Some(old) = entries.sessions.pop(&session) {
            entries.bytes -= old.bytes;
        }
    }

    /// How many bytes the kept histories take now.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

/// Whether `message` is as the store holds it for good: final, with no
/// tool call still waiting for the result its client will record.
fn is_settled(message: &Message) -> bool {
    message.status.is_final() && message.tool_calls.iter().all(|call| call.result.is_some())
}

/// About what `message` takes in memory: its fixed part and its texts.
fn footprint(message: &Message) -> usize {
    let texts = message.content.len()
        + message.model.as_ref().map_or(0, String::len)
        + message.finish_reason.as_ref().map_or(0, String::len)
        + message
            .error
            .as_ref()
            .map_or(0, |error| error.message.len())
        + message
            .tool_calls
            .iter()
            .map(|call| {
                call.id.len()
                    + call.name.len()
                    + call.arguments.len()
                    + call.result.as_ref().map_or(0, String::len)
                    + call.error.as_ref().map_or(0, String::len)
                    + std::mem::size_of_val(call)
            })
            .sum::<usize>();
    std::mem::size_of::<Message>() + texts
}

#[cfg(test)]
mod tests {
    use colloquy_domain::{MessageContent, MessageStatus, ToolCall};

    use super::*;

    fn user(session: SessionId, text: &str) -> Message {
        Message::user(
            session,
            MessageContent::parse(text.to_owned(), 10_000).unwrap(),
        )
    }

    fn branch(session: SessionId, count: usize) -> Vec<Message> {
        (0..count)
            .map(|i| user(session, &format!("message {i}")))
            .collect()
    }

    #[test]
    fn a_kept_history_is_found_while_its_branch_ends_at_the_head() {
        let cache = HistoryCache::default();
        let session = SessionId::new();
        let messages = branch(session, 5);
        let head = messages[4].id;
        cache.keep(session, messages.clone(), 200);
        let found = cache.get(session, Some(head)).expect("kept");
        assert_eq!(&found[..], &messages[..]);
        // Found again: a hit does not use the entry up.
        assert!(cache.get(session, Some(head)).is_some());
    }

    #[test]
    fn a_head_that_moved_misses_and_drops_the_entry() {
        let cache = HistoryCache::default();
        let session = SessionId::new();
        let messages = branch(session, 3);
        let old_head = messages[2].id;
        cache.keep(session, messages, 200);
        assert!(cache.get(session, Some(MessageId::new())).is_none());
        assert_eq!(cache.bytes(), 0, "the dead entry is dropped");
        assert!(cache.get(session, Some(old_head)).is_none());
        assert!(cache.get(SessionId::new(), None).is_none());
    }

    #[test]
    fn only_the_newest_limit_messages_are_kept() {
        let cache = HistoryCache::default();
        let session = SessionId::new();
        let messages = branch(session, 10);
        cache.keep(session, messages.clone(), 4);
        let found = cache.get(session, Some(messages[9].id)).unwrap();
        assert_eq!(&found[..], &messages[6..]);
    }

    #[test]
    fn a_history_that_may_still_change_is_not_kept() {
        let cache = HistoryCache::default();
        let session = SessionId::new();
        let mut messages = branch(session, 2);
        cache.keep(session, messages.clone(), 200);
        assert!(cache.get(session, Some(messages[1].id)).is_some());

        // A reply still streaming: its final state is not stored yet.
        let mut streaming = Message::streaming_reply(
            session,
            &colloquy_domain::ModelName::parse("model").unwrap(),
        );
        messages.push(streaming.clone());
        cache.keep(session, messages.clone(), 200);
        assert!(cache.get(session, Some(streaming.id)).is_none());
        assert!(
            cache.get(session, Some(messages[1].id)).is_none(),
            "the old entry went"
        );

        // A reply that ended on a call its client has not answered yet.
        streaming.finish(MessageStatus::Complete, None);
        streaming.tool_calls.push(ToolCall {
            id: "call_1".to_owned(),
            name: "lookup".to_owned(),
            arguments: "{}".to_owned(),
            result: None,
            error: None,
        });
        *messages.last_mut().unwrap() = streaming.clone();
        cache.keep(session, messages, 200);
        assert!(cache.get(session, Some(streaming.id)).is_none());
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn the_budget_evicts_the_least_recently_used_session() {
        let one = footprint(&user(SessionId::new(), "message 0")) * 3;
        let cache = HistoryCache::with_budget(one * 2);
        let (a, b, c) = (SessionId::new(), SessionId::new(), SessionId::new());
        let (ma, mb, mc) = (branch(a, 3), branch(b, 3), branch(c, 3));
        cache.keep(a, ma.clone(), 200);
        cache.keep(b, mb.clone(), 200);
        // `a` is used after `b`: `b` is the one to go.
        assert!(cache.get(a, Some(ma[2].id)).is_some());
        cache.keep(c, mc.clone(), 200);
        assert!(cache.get(b, Some(mb[2].id)).is_none());
        assert!(cache.get(a, Some(ma[2].id)).is_some());
        assert!(cache.get(c, Some(mc[2].id)).is_some());
        assert!(cache.bytes() <= one * 2);

        // A history bigger than the whole budget is never kept.
        cache.keep(a, branch(a, 7), 200);
        assert!(cache.get(a, Some(ma[2].id)).is_none());
        assert!(cache.bytes() <= one * 2);
    }

    #[test]
    fn forgetting_frees_the_entry() {
        let cache = HistoryCache::default();
        let session = SessionId::new();
        let messages = branch(session, 2);
        cache.keep(session, messages.clone(), 200);
        assert!(cache.bytes() > 0);
        cache.forget(session);
        assert_eq!(cache.bytes(), 0);
        assert!(cache.get(session, Some(messages[1].id)).is_none());
    }
}
