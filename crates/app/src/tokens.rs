//! Counting tokens as the model will, to fit a prompt in its context window.
//!
//! The encodings are OpenAI's (tiktoken-rs bundles them): `o200k_base` for
//! the GPT-4o and o-series families, `cl100k_base` for GPT-4 and GPT-3.5, and
//! `cl100k_base` as the fallback for any model tiktoken does not know
//! (Llama, Mistral, Qwen… served by Ollama or vLLM). Their tokenizers differ,
//! but by well under the margin a context budget is set with, which is all
//! the fallback is for.

use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::num::NonZeroUsize;
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};

use colloquy_ports::{PromptMessage, PromptRole};
use lru::LruCache;
use tiktoken_rs::tokenizer::{get_tokenizer, Tokenizer};
use tiktoken_rs::CoreBPE;

/// Every message costs a few tokens of framing besides its text
/// (`<|start|>{role}\n…<|end|>`), as OpenAI's own counting guide has it.
const TOKENS_PER_MESSAGE: usize = 3;
/// Every reply is primed with `<|start|>assistant<|message|>`.
pub(crate) const TOKENS_PER_REPLY: usize = 3;
/// Counts the memo remembers, all threads together, the longest remembered
/// dropped first: the history of some 300 conversations at the default
/// `history_limit` (200), in about 5 MiB.
const MEMO_CAPACITY: usize = 65_536;

/// Key of a count: the encoding, and the length and hash of the text.
type MemoKey = (usize, usize, u64);

/// Token counts of texts seen lately. Every turn re-counts the same system
/// prompt and history, and BPE behind its regex pre-tokenizer was the
/// largest single cost of a turn (about 18 % of the server's CPU at full
/// speed in `colloquy-bench throughput`); hashing the text is some fifty
/// times cheaper, even for a role name of a few bytes, whose encoding still
/// runs the whole regex machinery. Shared by every thread: prompts are
/// built on the blocking pool, whose threads take turns at random, and a
/// memo per thread missed most of a history counted on another one (a
/// profile of growing conversations showed BPE at 9 % of the server's CPU
/// behind such a memo). The lock is held for one lookup; a 64-bit hash
/// collision would only misjudge one message's size. A lookup only reads
/// (`peek`): moving the entry to the front, as an LRU `get` does, touched
/// three more entries scattered in memory, and a turn makes a lookup per
/// message of its history, some 200 (the memo's lookups were 4 % of the
/// server's CPU at full speed). So the oldest count goes first, even one
/// still in use; it is counted again once, some 65,536 new texts later.
static MEMO: LazyLock<Mutex<LruCache<MemoKey, usize>>> = LazyLock::new(|| {
    Mutex::new(LruCache::new(
        NonZeroUsize::new(MEMO_CAPACITY).expect("a positive capacity"),
    ))
});

fn memo() -> MutexGuard<'static, LruCache<MemoKey, usize>> {
    MEMO.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Counts tokens with the encoding of one model.
#[derive(Clone, Copy)]
pub(crate) struct TokenCounter {
    bpe: &'static CoreBPE,
    /// The tokens of each role's name, in [`role_index`] order: counted
    /// once per counter, not once per message of every prompt.
    roles: [usize; 4],
}

impl std::fmt::Debug for TokenCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCounter")
    }
}

impl TokenCounter {
    /// The counter for `model`'s encoding. The encodings are parsed once per
    /// process, on first use.
    pub(crate) fn for_model(model: &str) -> Self {
        let bpe = match get_tokenizer(model) {
            Some(Tokenizer::O200kBase | Tokenizer::O200kHarmony) => {
                tiktoken_rs::o200k_base_singleton()
            }
            _ => tiktoken_rs::cl100k_base_singleton(),
        };
        let mut counter = Self { bpe, roles: [0; 4] };
        counter.roles = ROLES.map(|role| counter.text(role_name(role)));
        counter
    }

    /// Tokens of `text` alone. Special-token markers in user text are counted
    /// as the plain text they are.
    pub(crate) fn text(&self, text: &str) -> usize {
        let mut hasher = DefaultHasher::new();
        text.hash(&mut hasher);
        let key = (
            std::ptr::from_ref(self.bpe) as usize,
            text.len(),
            hasher.finish(),
        );
        if let Some(count) = memo().peek(&key).copied() {
            return count;
        }
        let count = self.bpe.encode_ordinary(text).len();
        memo().put(key, count);
        count
    }

    /// Tokens one message takes in a prompt, framing included.
    pub(crate) fn message(&self, message: &PromptMessage) -> usize {
        let role = self.roles[role_index(message.role)];
        let calls: usize = message
            .tool_calls
            .iter()
            .map(|call| self.text(&call.name) + self.text(&call.arguments) + TOKENS_PER_MESSAGE)
            .sum();
        TOKENS_PER_MESSAGE + role + self.text(&message.content) + calls
    }
}

const ROLES: [PromptRole; 4] = [
    PromptRole::System,
    PromptRole::User,
    PromptRole::Assistant,
    PromptRole::Tool,
];

/// Where `role` is in [`ROLES`] (and in a counter's `roles`).
fn role_index(role: PromptRole) -> usize {
    match role {
        PromptRole::System => 0,
        PromptRole::User => 1,
        PromptRole::Assistant => 2,
        PromptRole::Tool => 3,
    }
}

/// The role's name as the model's chat template writes it.
fn role_name(role: PromptRole) -> &'static str {
    match role {
        PromptRole::System => "system",
        PromptRole::User => "user",
        PromptRole::Assistant => "assistant",
        PromptRole::Tool => "tool",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_with_the_models_encoding_and_falls_back_for_unknown_models() {
        // Known counts of OpenAI's encodings.
        let cl100k = TokenCounter::for_model("gpt-4");
        assert_eq!(cl100k.text("hello world"), 2);
        let o200k = TokenCounter::for_model("gpt-4o-mini");
        assert_eq!(o200k.text("hello world"), 2);
        assert_eq!(o200k.text("tiktoken is great!"), 6);
        assert_eq!(cl100k.text("tiktoken is great!"), 6);
        let unknown = TokenCounter::for_model("llama3.1:8b");
        assert_eq!(unknown.text("hello world"), 2);
    }

    #[test]
    fn a_remembered_count_is_the_count() {
        let counter = TokenCounter::for_model("gpt-4o");
        let long = "tiktoken is great! ".repeat(20);
        let first = counter.text(&long);
        assert_eq!(first, counter.bpe.encode_ordinary(&long).len());
        assert_eq!(counter.text(&long), first, "the memo answers the same");
        // Another encoding does not get this one's count.
        let other = TokenCounter::for_model("gpt-4");
        assert_eq!(other.text(&long), other.bpe.encode_ordinary(&long).len());
    }

    #[test]
    fn every_role_costs_what_its_name_encodes_to() {
        for model in ["gpt-4o", "gpt-4", "llama3.1:8b"] {
            let counter = TokenCounter::for_model(model);
            for role in ROLES {
                let message = PromptMessage::new(role, "hello world");
                let name = counter.bpe.encode_ordinary(role_name(role)).len();
                assert_eq!(counter.message(&message), TOKENS_PER_MESSAGE + name + 2);
            }
        }
    }

    #[test]
    fn a_message_costs_its_text_and_its_framing() {
        let counter = TokenCounter::for_model("gpt-4o");
        let message = PromptMessage::new(PromptRole::User, "hello world");
        assert_eq!(counter.message(&message), 3 + 1 + 2);
    }
}
