//! Validated values. Each `parse` is the only way to build its type.

use std::fmt;

/// Why a value from outside was refused. `field` names it as the API does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidationError {
    /// Empty or only white space.
    Blank { field: &'static str },
    /// Longer than allowed, counted in Unicode scalar values (what users call characters).
    TooLong {
        field: &'static str,
        max: usize,
        actual: usize,
    },
    /// Holds characters the field does not allow (line breaks in a title, say).
    BadCharacters {
        field: &'static str,
        allowed: &'static str,
    },
}

impl ValidationError {
    #[must_use]
    pub const fn field(&self) -> &'static str {
        match self {
            Self::Blank { field }
            | Self::TooLong { field, .. }
            | Self::BadCharacters { field, .. } => field,
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Blank { field } => write!(f, "`{field}` must not be empty or only white space"),
            Self::TooLong { field, max, actual } => {
                write!(
                    f,
                    "`{field}` is {actual} characters long; at most {max} are allowed"
                )
            }
            Self::BadCharacters { field, allowed } => write!(f, "`{field}` must be {allowed}"),
        }
    }
}

impl std::error::Error for ValidationError {}

pub(crate) fn check_length(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<(), ValidationError> {
    // Byte length bounds the character count from above: skip counting when it is short.
    if value.len() <= max {
        return Ok(());
    }
    let actual = value.chars().count();
    if actual > max {
        return Err(ValidationError::TooLong { field, max, actual });
    }
    Ok(())
}

pub(crate) fn check_not_blank(field: &'static str, value: &str) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return Err(ValidationError::Blank { field });
    }
    Ok(())
}

/// The text of a user's message: not blank, at most `max_chars` characters.
///
/// The text is kept exactly as written (leading spaces and line breaks can
/// matter in code); only a message of nothing but white space is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageContent(String);

impl MessageContent {
    /// # Errors
    /// [`ValidationError::Blank`] or [`ValidationError::TooLong`].
    pub fn parse(text: String, max_chars: usize) -> Result<Self, ValidationError> {
        check_not_blank("content", &text)?;
        check_length("content", &text, max_chars)?;
        Ok(Self(text))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    #[must_use]
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A session's title: one line, trimmed, 1 to [`Title::MAX_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    pub const MAX_CHARS: usize = 200;

    /// # Errors
    /// Blank, too long, or holding a line break or another control character.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let text = text.trim();
        check_not_blank("title", text)?;
        check_length("title", text, Self::MAX_CHARS)?;
        if text.chars().any(char::is_control) {
            return Err(ValidationError::BadCharacters {
                field: "title",
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

/// The instructions a session's model receives before the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemPrompt(String);

impl SystemPrompt {
    /// Long enough for a detailed persona, short enough to leave room for the
    /// conversation in every current model's context window.
    pub const MAX_CHARS: usize = 32_000;

    /// # Errors
    /// Blank or too long.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        check_not_blank("system_prompt", text)?;
        check_length("system_prompt", text, Self::MAX_CHARS)?;
        Ok(Self(text.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name of a model as the upstream knows it (`gpt-4o-mini`, `llama3.1:8b`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelName(String);

impl ModelName {
    pub const MAX_CHARS: usize = 200;

    /// # Errors
    /// Blank, too long, or holding white space or control characters.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        check_not_blank("model", text)?;
        check_length("model", text, Self::MAX_CHARS)?;
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ValidationError::BadCharacters {
                field: "model",
                allowed: "a model name without spaces or control characters",
            });
        }
        Ok(Self(text.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_refuses_blank_and_too_long_but_keeps_text_as_written() {
        assert_eq!(
            MessageContent::parse(" \n\t ".into(), 10),
            Err(ValidationError::Blank { field: "content" })
        );
        assert_eq!(
            MessageContent::parse("ééééé".into(), 4),
            Err(ValidationError::TooLong {
                field: "content",
                max: 4,
                actual: 5
            })
        );
        // Five two-byte characters fit a limit of five characters.
        assert!(MessageContent::parse("ééééé".into(), 5).is_ok());
        let kept = MessageContent::parse("  indented\n".into(), 100).unwrap();
        assert_eq!(kept.as_str(), "  indented\n");
    }

    #[test]
    fn title_is_one_trimmed_line() {
        assert_eq!(
            Title::parse("  Trip to Oslo ").unwrap().as_str(),
            "Trip to Oslo"
        );
        assert!(matches!(
            Title::parse("two\nlines"),
            Err(ValidationError::BadCharacters { .. })
        ));
        assert!(matches!(
            Title::parse(""),
            Err(ValidationError::Blank { .. })
        ));
        assert!(Title::parse(&"x".repeat(200)).is_ok());
        assert!(matches!(
            Title::parse(&"x".repeat(201)),
            Err(ValidationError::TooLong { .. })
        ));
    }

    #[test]
    fn model_names_have_no_spaces() {
        assert!(ModelName::parse("llama3.1:8b").is_ok());
        assert!(ModelName::parse("gpt 4").is_err());
        assert!(ModelName::parse("").is_err());
    }

    #[test]
    fn system_prompt_is_bounded() {
        assert!(SystemPrompt::parse("Be brief.").is_ok());
        assert!(SystemPrompt::parse("   ").is_err());
        assert!(SystemPrompt::parse(&"x".repeat(SystemPrompt::MAX_CHARS + 1)).is_err());
    }
}
