//! Assistants: named voices with their own instructions, model and tools,
//! several of which may answer in one conversation.

use crate::values::{check_length, check_not_blank};
use crate::{AssistantId, ModelName, Principal, Timestamp, ValidationError};

/// An assistant's name: one trimmed line of 1 to [`AssistantName::MAX_CHARS`]
/// characters, unique among its owner's assistants. It is what the other
/// voices of a conversation know it by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AssistantName(String);

impl AssistantName {
    pub const MAX_CHARS: usize = 64;

    /// # Errors
    /// Blank, too long, or holding a line break or another control character.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let text = text.trim();
        check_not_blank("name", text)?;
        check_length("name", text, Self::MAX_CHARS)?;
        if text.chars().any(char::is_control) {
            return Err(ValidationError::BadCharacters {
                field: "name",
                allowed: "a single line without control characters",
            });
        }
        Ok(Self(text.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An assistant's system prompt: not blank, as long as a session's may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instructions(String);

impl Instructions {
    pub const MAX_CHARS: usize = crate::SystemPrompt::MAX_CHARS;

    /// # Errors
    /// Blank or too long.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        check_not_blank("instructions", text)?;
        check_length("instructions", text, Self::MAX_CHARS)?;
        Ok(Self(text.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A named voice: its own system prompt, model and tools.
///
/// `tools` holds names of the tools the service offers (`COLLOQUY_TOOLS`);
/// which names those are is configuration, so the use cases check them,
/// not this type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assistant {
    pub id: AssistantId,
    /// Who created it: the only principal that may use, read or change it.
    pub owner: Principal,
    pub name: AssistantName,
    pub instructions: Option<Instructions>,
    pub model: ModelName,
    pub tools: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Assistant {
    /// A new assistant created now.
    #[must_use]
    pub fn new(
        owner: Principal,
        name: AssistantName,
        instructions: Option<Instructions>,
        model: ModelName,
        tools: Vec<String>,
    ) -> Self {
        let now = Timestamp::now();
        Self {
            id: AssistantId::new(),
            owner,
            name,
            instructions,
            model,
            tools,
            created_at: now,
            updated_at: now,
        }
    }

    /// Who this assistant is in the messages it writes.
    #[must_use]
    pub fn speaker(&self) -> Speaker {
        Speaker {
            id: self.id,
            name: self.name.as_str().to_owned(),
        }
    }
}

/// Which assistant wrote a message, as the message keeps it: the name stays
/// when the assistant is deleted or renamed later.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Speaker {
    pub id: AssistantId,
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_trimmed_line_of_at_most_64_characters() {
        assert_eq!(
            AssistantName::parse("  Critic ").unwrap().as_str(),
            "Critic"
        );
        assert!(AssistantName::parse(&"é".repeat(64)).is_ok());
        assert!(matches!(
            AssistantName::parse(&"é".repeat(65)),
            Err(ValidationError::TooLong { field: "name", .. })
        ));
        assert!(matches!(
            AssistantName::parse(" \t"),
            Err(ValidationError::Blank { field: "name" })
        ));
        assert!(matches!(
            AssistantName::parse("two\nlines"),
            Err(ValidationError::BadCharacters { field: "name", .. })
        ));
    }

    #[test]
    fn instructions_are_bounded_and_never_blank() {
        assert!(Instructions::parse("Argue the other side.").is_ok());
        assert!(matches!(
            Instructions::parse("  "),
            Err(ValidationError::Blank {
                field: "instructions"
            })
        ));
        assert!(Instructions::parse(&"x".repeat(Instructions::MAX_CHARS + 1)).is_err());
    }
}
