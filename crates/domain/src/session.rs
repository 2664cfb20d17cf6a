use crate::{
    AssistantId, MessageId, ModelName, Principal, SessionId, SystemPrompt, Timestamp, Title,
};

/// A conversation: its settings and how many messages it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    /// Who created it: the only principal that may read or change it.
    pub owner: Principal,
    pub title: Option<Title>,
    /// `None` means the service's default system prompt applies.
    pub system_prompt: Option<SystemPrompt>,
    pub model: ModelName,
    /// The assistant that answers when a message names none; `None` for the
    /// service's default voice.
    pub assistant_id: Option<AssistantId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The newest message of the active branch: history, the context sent
    /// to the model and the export follow the branch that ends here.
    /// `None` while the session is empty.
    pub head_message_id: Option<MessageId>,
    /// How many messages the active branch holds (not every branch).
    pub message_count: u64,
}

impl Session {
    /// A new, empty session created now.
    #[must_use]
    pub fn new(
        owner: Principal,
        title: Option<Title>,
        system_prompt: Option<SystemPrompt>,
        model: ModelName,
    ) -> Self {
        let now = Timestamp::now();
        Self {
            id: SessionId::new(),
            owner,
            title,
            system_prompt,
            model,
            assistant_id: None,
            created_at: now,
            updated_at: now,
            head_message_id: None,
            message_count: 0,
        }
    }
}
