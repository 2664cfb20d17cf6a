//! Counting tokens as the model will, to fit a prompt in its context window.
//!
//! The encodings are OpenAI's (tiktoken-rs bundles them): `o200k_base` for
//! the GPT-4o and o-series families, `cl100k_base` for GPT-4 and GPT-3.5, and
//! `cl100k_base` as the fallback for any model tiktoken does not know
//! (Llama, Mistral, Qwen… served by Ollama or vLLM). Their tokenizers differ,
//! but by well under the margin a context budget is set with, which is all
//! the fallback is for.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash as _, Hasher as _};

use colloquy_ports::PromptMessage;
use tiktoken_rs::tokenizer::{get_tokenizer, Tokenizer};
use tiktoken_rs::CoreBPE;

/// Every message costs a few tokens of framing besides its text
/// (`<|start|>{role}\n…<|end|>`), as OpenAI's own counting guide has it.
const TOKENS_PER_MESSAGE: usize = 3;
/// Every reply is primed with `<|start|>assistant<|message|>`.
pub(crate) const TOKENS_PER_REPLY: usize = 3;
/// Counts a thread remembers before its memo starts over (a few hundred KiB).
const MEMO_CAPACITY: usize = 8192;

thread_local! {
    /// Token counts of texts seen lately on this thread, keyed by encoding,
    /// length and hash of the text. Every turn re-counts the same system
    /// prompt and history, and BPE behind its regex pre-tokenizer was the
    /// largest single cost of a turn (about 18 % of the server's CPU at full
    /// speed in `colloquy-bench throughput`); hashing the text is some fifty
    /// times cheaper, even for a role name of a few bytes, whose encoding
    /// still runs the whole regex machinery. Per thread, so that no lock is
    /// shared by all sessions; a 64-bit hash collision would only misjudge
    /// one message's size.
    static MEMO: RefCell<HashMap<(usize, usize, u64), usize>> = RefCell::new(HashMap::new());
}

/// Counts tokens with the encoding of one model.
#[derive(Clone, Copy)]
pub(crate) struct TokenCounter {
    bpe: &'static CoreBPE,
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
        Self { bpe }
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
        if let Some(count) = MEMO.with_borrow(|memo| memo.get(&key).copied()) {
            return count;
        }
        let count = self.bpe.encode_ordinary(text).len();
        MEMO.with_borrow_mut(|memo| {
            if memo.len() >= MEMO_CAPACITY {
                memo.clear();
            }
            memo.insert(key, count);
        });
        count
    }

    /// Tokens one message takes in a prompt, framing included.
    pub(crate) fn message(&self, message: &PromptMessage) -> usize {
        let role = match message.role {
            colloquy_ports::PromptRole::System => "system",
            colloquy_ports::PromptRole::User => "user",
            colloquy_ports::PromptRole::Assistant => "assistant",
            colloquy_ports::PromptRole::Tool => "tool",
        };
        let calls: usize = message
            .tool_calls
            .iter()
            .map(|call| self.text(&call.name) + self.text(&call.arguments) + TOKENS_PER_MESSAGE)
            .sum();
        TOKENS_PER_MESSAGE + self.text(role) + self.text(&message.content) + calls
    }
}

#[cfg(test)]
mod tests {
    use colloquy_ports::PromptRole;

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
    fn a_message_costs_its_text_and_its_framing() {
        let counter = TokenCounter::for_model("gpt-4o");
        let message = PromptMessage::new(PromptRole::User, "hello world");
        assert_eq!(counter.message(&message), 3 + 1 + 2);
    }
}
