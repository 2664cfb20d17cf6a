//! The conversation chain: a fingerprint of a branch's roles and texts from
//! its first message to one message, so that a request resending a whole
//! conversation (as OpenAI's Chat Completions clients do every turn) finds
//! the stored message it continues from with one indexed lookup, however
//! many messages are stored.
//!
//! Each message's chain is the hash of its parent's chain, its role and its
//! text, so two branches share a chain exactly as far as they share their
//! roles and texts. Tool calls, models, speakers and statuses are not part
//! of it: a client resends only what it was shown.

use sha2::{Digest, Sha256};

use crate::Role;

/// The fingerprint of a conversation up to and including one message: the
/// first 8 bytes of a SHA-256 chain, as a signed integer because that is
/// what SQL stores natively. The encoding never changes: stored chains
/// must keep matching requests made by later versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConversationChain(i64);

impl ConversationChain {
    /// The chain of a message with `role` and `text` following `parent`'s
    /// chain (`None` for the first message of a conversation).
    #[must_use]
    pub fn extend(parent: Option<Self>, role: Role, text: &str) -> Self {
        let mut hash = Sha256::new();
        match parent {
            // A marker byte keeps "no parent" apart from every parent.
            None => hash.update([0u8]),
            Some(Self(parent)) => {
                hash.update([1u8]);
                hash.update(parent.to_le_bytes());
            }
        }
        hash.update(role.as_str().as_bytes());
        hash.update([0u8]);
        // The length first: "ab" + "c" and "a" + "bc" differ.
        hash.update((text.len() as u64).to_le_bytes());
        hash.update(text.as_bytes());
        let digest = hash.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Self(i64::from_le_bytes(first))
    }

    /// The chain of a whole conversation, oldest message first; `None` for
    /// an empty one.
    pub fn of<'a>(messages: impl IntoIterator<Item = (Role, &'a str)>) -> Option<Self> {
        messages.into_iter().fold(None, |chain, (role, text)| {
            Some(Self::extend(chain, role, text))
        })
    }

    /// A chain as it was stored.
    #[must_use]
    pub const fn from_stored(value: i64) -> Self {
        Self(value)
    }

    /// The value to store.
    #[must_use]
    pub const fn stored(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_depends_on_every_role_and_text_in_order() {
        let base = ConversationChain::of([(Role::User, "hi"), (Role::Assistant, "hello")]);
        assert_eq!(
            base,
            ConversationChain::of([(Role::User, "hi"), (Role::Assistant, "hello")])
        );
        for other in [
            ConversationChain::of([(Role::User, "hi"), (Role::User, "hello")]),
            ConversationChain::of([(Role::User, "hi"), (Role::Assistant, "hello!")]),
            ConversationChain::of([(Role::Assistant, "hello"), (Role::User, "hi")]),
            ConversationChain::of([(Role::User, "hihello")]),
            ConversationChain::of([(Role::User, "hi")]),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn split_points_inside_texts_do_not_collide() {
        let one = ConversationChain::of([(Role::User, "ab"), (Role::User, "c")]);
        let two = ConversationChain::of([(Role::User, "a"), (Role::User, "bc")]);
        assert_ne!(one, two);
    }

    #[test]
    fn extending_one_by_one_equals_the_whole() {
        let first = ConversationChain::extend(None, Role::User, "q");
        let second = ConversationChain::extend(Some(first), Role::Assistant, "a");
        assert_eq!(
            Some(second),
            ConversationChain::of([(Role::User, "q"), (Role::Assistant, "a")])
        );
        assert_eq!(ConversationChain::of([]), None);
    }

    #[test]
    fn the_encoding_is_frozen() {
        // Stored chains must keep matching: this value may never change.
        let chain = ConversationChain::of([(Role::User, "Hello"), (Role::Assistant, "Hi!")]);
        assert_eq!(chain.map(ConversationChain::stored), Some(FROZEN));
    }

    // Computed independently (Python hashlib) from the encoding above.
    const FROZEN: i64 = -3_432_518_340_792_529_588;
}
