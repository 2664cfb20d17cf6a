//! Reworking a conversation: a reply regenerated, or a question edited,
//! becomes a new branch beside the old one, which stays readable (the
//! session's messages are a tree; see `ChatRepository::list_branch`).

use colloquy_domain::{
    AssistantId, Message, MessageContent, MessageId, Principal, Role, SessionId,
};
use colloquy_ports::RepoError;

use crate::turn::{Answerers, Joins, TurnRequest};
use crate::{ChatError, ChatService, SendOutcome};

impl ChatService {
    /// Asks again for the reply `message_id`: a new reply beside it (under
    /// the same question), by the same assistant, which becomes the head.
    /// It streams like a send. A reply by an assistant since deleted, or by
    /// the session's voice, is asked of the session's voice as it is now.
    ///
    /// # Errors
    /// [`ChatError::MessageNotFound`]; [`ChatError::WrongRole`] for a user
    /// message; otherwise as [`ChatService::send_message`].
    pub async fn regenerate(
        &self,
        caller: &Principal,
        session_id: SessionId,
        message_id: MessageId,
    ) -> Result<SendOutcome, ChatError> {
        self.refuse_when_shutting_down()?;
        let target = self.message_of(caller, session_id, message_id).await?;
        if target.role != Role::Assistant {
            return Err(ChatError::WrongRole(
                "only an assistant's reply can be regenerated; to change a question, edit it"
                    .to_owned(),
            ));
        }
        let named = match &target.speaker {
            Some(speaker) => match self
                .assistant_store()
                .get_assistant(caller, speaker.id)
                .await
            {
                Ok(assistant) => Some(vec![assistant]),
                Err(RepoError::NotFound) => None,
                Err(error) => return Err(error.into()),
            },
            None => None,
        };
        let request = TurnRequest {
            session_id,
            user_message: None,
            answerers: named.map_or(Answerers::Session, Answerers::Named),
            joins: Joins::Under(target.parent_id),
        };
        self.start_turn(caller, request).await
    }

    /// Replaces the question `message_id` with `content` on a new branch:
    /// a new user message beside it (under the message it followed) and
    /// its reply, by the session's voice or by `assistants`, which become
    /// the head. It streams like a send.
    ///
    /// # Errors
    /// [`ChatError::MessageNotFound`]; [`ChatError::WrongRole`] for an
    /// assistant's message; otherwise as [`ChatService::send_message_to`].
    pub async fn edit_message(
        &self,
        caller: &Principal,
        session_id: SessionId,
        message_id: MessageId,
        content: String,
        assistants: Option<Vec<AssistantId>>,
    ) -> Result<SendOutcome, ChatError> {
        self.refuse_when_shutting_down()?;
        let content = MessageContent::parse(content, self.config().max_message_chars)?;
        let target = self.message_of(caller, session_id, message_id).await?;
        if target.role != Role::User {
            return Err(ChatError::WrongRole(
                "only a user's message can be edited; to get another reply, regenerate it"
                    .to_owned(),
            ));
        }
        let named = match assistants {
            Some(ids) => Some(self.named_assistants(caller, &ids).await?),
            None => None,
        };
        let question = Message::user(session_id, content);
        let request = TurnRequest {
            session_id,
            user_message: Some(question),
            answerers: named.map_or(Answerers::Session, Answerers::Named),
            joins: Joins::Under(target.parent_id),
        };
        self.start_turn(caller, request).await
    }

    /// One message of the session: a missing session and a missing message
    /// are told apart.
    pub(crate) async fn message_of(
        &self,
        caller: &Principal,
        session_id: SessionId,
        message_id: MessageId,
    ) -> Result<Message, ChatError> {
        let repo = &self.inner.repo;
        match repo.get_message(caller, session_id, message_id).await {
            Err(RepoError::NotFound) => {
                repo.get_session(caller, session_id).await?;
                Err(ChatError::MessageNotFound)
            }
            found => Ok(found?),
        }
    }
}
