//! The use cases of assistants: named voices a principal defines, with their
//! own instructions, model and tools (`POST /api/v1/assistants` and the rest).

use colloquy_domain::{AssistantId, AssistantName, Instructions, Principal, Timestamp};
use colloquy_ports::{AssistantChanges, Page, RepoError};

use crate::{ChatError, ChatService};
use colloquy_domain::Assistant;

/// The fields of a new assistant, as a client sent them (unvalidated).
#[derive(Debug, Clone, Default)]
pub struct NewAssistant {
    pub name: String,
    pub instructions: Option<String>,
    /// `None`: the service's default model.
    pub model: Option<String>,
    /// `None`: no tools.
    pub tools: Option<Vec<String>>,
}

/// A change to an assistant. `None` leaves a field alone; `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct AssistantPatch {
    pub name: Option<String>,
    pub instructions: Option<Option<String>>,
    pub model: Option<String>,
    pub tools: Option<Vec<String>>,
}

impl ChatService {
    /// # Errors
    /// [`ChatError::Invalid`], [`ChatError::ModelNotAllowed`] or
    /// [`ChatError::UnknownTool`] for a bad field (nothing is stored then);
    /// [`ChatError::AssistantNameTaken`].
    pub async fn create_assistant(
        &self,
        caller: &Principal,
        new: NewAssistant,
    ) -> Result<Assistant, ChatError> {
        let name = AssistantName::parse(&new.name)?;
        let instructions = new
            .instructions
            .as_deref()
            .map(Instructions::parse)
            .transpose()?;
        let model = match new.model.as_deref() {
            Some(model) => self.allowed_model(model)?,
            None => self.config().default_model.clone(),
        };
        let tools = self.offered_tools(new.tools.unwrap_or_default())?;
        let assistant = Assistant::new(caller.clone(), name, instructions, model, tools);
        self.assistant_store()
            .create_assistant(&assistant)
            .await
            .map_err(|error| assistant_error(error, &assistant.name))?;
        Ok(assistant)
    }

    /// # Errors
    /// When the store fails.
    pub async fn list_assistants(
        &self,
        caller: &Principal,
        limit: usize,
        after: Option<AssistantId>,
    ) -> Result<Page<Assistant>, ChatError> {
        Ok(self
            .assistant_store()
            .list_assistants(caller, limit, after)
            .await?)
    }

    /// # Errors
    /// [`ChatError::AssistantNotFound`].
    pub async fn get_assistant(
        &self,
        caller: &Principal,
        id: AssistantId,
    ) -> Result<Assistant, ChatError> {
        self.assistant_store()
            .get_assistant(caller, id)
            .await
            .map_err(not_found_is_assistant)
    }

    /// Applies `patch`, writing only the fields it names.
    ///
    /// # Errors
    /// As [`ChatService::create_assistant`], and
    /// [`ChatError::AssistantNotFound`].
    pub async fn update_assistant(
        &self,
        caller: &Principal,
        id: AssistantId,
        patch: AssistantPatch,
    ) -> Result<Assistant, ChatError> {
        // Validate everything before touching the store.
        let name = patch
            .name
            .as_deref()
            .map(AssistantName::parse)
            .transpose()?;
        let instructions = patch
            .instructions
            .map(|text| text.as_deref().map(Instructions::parse).transpose())
            .transpose()?;
        let model = patch
            .model
            .as_deref()
            .map(|model| self.allowed_model(model))
            .transpose()?;
        let tools = patch
            .tools
            .map(|tools| self.offered_tools(tools))
            .transpose()?;
        let changes = AssistantChanges {
            name: name.clone(),
            instructions,
            model,
            tools,
        };
        self.assistant_store()
            .update_assistant(caller, id, &changes, Timestamp::now())
            .await
            .map_err(|error| match (&error, &name) {
                (RepoError::Conflict, Some(name)) => {
                    ChatError::AssistantNameTaken(name.as_str().to_owned())
                }
                _ => not_found_is_assistant(error),
            })
    }

    /// Deletes an assistant. The messages it wrote keep its name; sessions
    /// that had it as their default assistant fall back to the default voice.
    ///
    /// # Errors
    /// [`ChatError::AssistantNotFound`].
    pub async fn delete_assistant(
        &self,
        caller: &Principal,
        id: AssistantId,
    ) -> Result<(), ChatError> {
        self.assistant_store()
            .delete_assistant(caller, id)
            .await
            .map_err(not_found_is_assistant)
    }

    /// `tools`, when every one is offered here (`COLLOQUY_TOOLS`), without
    /// repeats, in the order given.
    fn offered_tools(&self, tools: Vec<String>) -> Result<Vec<String>, ChatError> {
        let offered = self.config().tools.names();
        if let Some(unknown) = tools.iter().find(|tool| !offered.contains(&tool.as_str())) {
            let available = if offered.is_empty() {
                "this server offers no tools".to_owned()
            } else {
                format!("the tools offered here are {}", offered.join(", "))
            };
            return Err(ChatError::UnknownTool(format!(
                "`tools`: `{}` is not a tool this server offers; {available}",
                unknown.chars().take(64).collect::<String>()
            )));
        }
        let mut unique: Vec<String> = Vec::with_capacity(tools.len());
        for tool in tools {
            if !unique.contains(&tool) {
                unique.push(tool);
            }
        }
        Ok(unique)
    }
}

fn not_found_is_assistant(error: RepoError) -> ChatError {
    match error {
        RepoError::NotFound => ChatError::AssistantNotFound,
        other => other.into(),
    }
}

fn assistant_error(error: RepoError, name: &AssistantName) -> ChatError {
    match error {
        RepoError::Conflict => ChatError::AssistantNameTaken(name.as_str().to_owned()),
        other => not_found_is_assistant(other),
    }
}
