//! What a principal spends upstream: every completion it causes (its
//! replies, the titles they earn, its summaries) is added to its day in the
//! [`UsageLedger`], and the daily allowance is checked before it spends more.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use colloquy_domain::{Principal, Timestamp, Usage, UtcDay};
use colloquy_ports::{
    ChatChunk, ChatRequest, ChatStream, Limit, LimitReached, LlmClient, LlmError, PromptMessage,
    UsageLedger,
};
use futures::StreamExt;

use crate::tokens::{TokenCounter, TOKENS_PER_REPLY};
use crate::ChatError;

/// The daily allowance of upstream tokens, and the ledger it is checked
/// against.
#[derive(Clone)]
pub(crate) struct Allowance {
    pub(crate) ledger: Arc<dyn UsageLedger>,
    /// Tokens per principal per UTC day; `0` for no limit.
    pub(crate) daily_tokens: u64,
}

impl Allowance {
    /// What `principal` spent today.
    pub(crate) async fn spent_today(&self, principal: &Principal) -> Result<Usage, ChatError> {
        Ok(self.ledger.usage_on(principal, UtcDay::today()).await?)
    }

    /// Refuses, until the next 00:00 UTC, a principal that has spent its
    /// tokens for today. A request that starts under the allowance runs to
    /// its end, so a day's spending can exceed it by that request's cost.
    pub(crate) async fn check(&self, principal: &Principal) -> Result<(), ChatError> {
        if self.daily_tokens == 0 {
            return Ok(());
        }
        let now = Timestamp::now();
        let spent = self.ledger.usage_on(principal, UtcDay::of(now)).await?;
        if spent.prompt_tokens + spent.completion_tokens < self.daily_tokens {
            return Ok(());
        }
        let until_tomorrow = UtcDay::of(now).next_start().as_micros() - now.as_micros();
        let whole_seconds = u64::try_from(until_tomorrow)
            .unwrap_or(0)
            .div_ceil(1_000_000);
        Err(LimitReached {
            limit: Limit::DailyTokens,
            max: self.daily_tokens,
            retry_after: Duration::from_secs(whole_seconds.max(1)),
        }
        .into())
    }

    /// `llm`, with every completion it streams for `principal` entered in
    /// the ledger.
    pub(crate) fn meter(
        &self,
        llm: Arc<dyn LlmClient>,
        principal: Principal,
    ) -> Arc<dyn LlmClient> {
        Arc::new(Metered {
            llm,
            ledger: Arc::clone(&self.ledger),
            principal,
        })
    }
}

/// A model whose completions are billed to one principal.
struct Metered {
    llm: Arc<dyn LlmClient>,
    ledger: Arc<dyn UsageLedger>,
    principal: Principal,
}

#[async_trait]
impl LlmClient for Metered {
    async fn stream_chat(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        let bill = Bill {
            ledger: Arc::clone(&self.ledger),
            principal: self.principal.clone(),
            model: request.model.clone(),
            prompt: request.messages.clone(),
            streamed: String::new(),
            settled: false,
        };
        let chunks = self.llm.stream_chat(request).await?;
        Ok(
            futures::stream::unfold((chunks, bill), |(mut chunks, mut bill)| async move {
                let item = chunks.next().await?;
                match &item {
                    Ok(ChatChunk::Delta(text)) => bill.streamed.push_str(text),
                    Ok(ChatChunk::ToolCall(call)) => bill.streamed.push_str(&call.arguments),
                    Ok(ChatChunk::Finished(completion)) => bill.settle(completion.usage).await,
                    Err(_) => {}
                }
                Some((item, (chunks, bill)))
            })
            .boxed(),
        )
    }
}

/// What one completion costs, settled when it finishes. A completion that
/// ends otherwise (cancelled, failed midway, its reader gone) was still
/// paid for upstream: dropping an unsettled bill enters an estimate, so
/// stopping every reply just before its end does not dodge the allowance.
struct Bill {
    ledger: Arc<dyn UsageLedger>,
    principal: Principal,
    model: String,
    prompt: Vec<PromptMessage>,
    /// The text and tool arguments streamed so far.
    streamed: String,
    settled: bool,
}

impl Bill {
    async fn settle(&mut self, reported: Option<Usage>) {
        self.settled = true;
        let usage = match reported {
            Some(usage) => usage,
            // A server that reports no usage is billed by our own count,
            // which is CPU work: off the async workers.
            None => {
                let (model, prompt, streamed) = self.take_contents();
                tokio::task::spawn_blocking(move || estimate(&model, &prompt, &streamed))
                    .await
                    .unwrap_or_default()
            }
        };
        record(&*self.ledger, &self.principal, usage).await;
    }
}

impl Bill {
    fn take_contents(&mut self) -> (String, Vec<PromptMessage>, String) {
        (
            std::mem::take(&mut self.model),
            std::mem::take(&mut self.prompt),
            std::mem::take(&mut self.streamed),
        )
    }
}

impl Drop for Bill {
    fn drop(&mut self) {
        // Nothing streamed: the upstream refused or never answered, which
        // costs nothing.
        if self.settled || self.streamed.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (ledger, principal) = (Arc::clone(&self.ledger), self.principal.clone());
        let (model, prompt, streamed) = self.take_contents();
        runtime.spawn(async move {
            let usage =
                tokio::task::spawn_blocking(move || estimate(&model, &prompt, &streamed)).await;
            if let Ok(usage) = usage {
                record(&*ledger, &principal, usage).await;
            }
        });
    }
}

/// Our own count of what a completion cost, for when the upstream gave none.
fn estimate(model: &str, prompt: &[PromptMessage], streamed: &str) -> Usage {
    let counter = TokenCounter::for_model(model);
    let prompt_tokens: usize = prompt
        .iter()
        .map(|message| counter.message(message))
        .sum::<usize>()
        + TOKENS_PER_REPLY;
    Usage {
        prompt_tokens: prompt_tokens as u64,
        completion_tokens: counter.text(streamed) as u64,
    }
}

async fn record(ledger: &dyn UsageLedger, principal: &Principal, usage: Usage) {
    if usage == Usage::default() {
        return;
    }
    if let Err(error) = ledger.add_usage(principal, UtcDay::today(), usage).await {
        // The reply itself is fine; only the bookkeeping missed it.
        tracing::warn!(%error, %principal, "could not record upstream usage");
    }
}
