//! Who is asking: every session belongs to the principal that created it.

use std::fmt;

use crate::ValidationError;

/// A principal's name: the `sub` of a JWT, the principal an API key was made
/// for, or `anonymous` when the server runs without authentication.
///
/// One line of 1 to [`Principal::MAX_CHARS`] characters, without control
/// characters, kept exactly as given (names are compared byte for byte).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal(String);

impl Principal {
    pub const MAX_CHARS: usize = 255;
    /// The one principal of a server that authenticates nobody.
    pub const ANONYMOUS: &'static str = "anonymous";

    /// # Errors
    /// Blank, too long, or holding a control character.
    pub fn parse(name: &str) -> Result<Self, ValidationError> {
        if name.trim().is_empty() {
            return Err(ValidationError::Blank { field: "principal" });
        }
        let chars = name.chars().count();
        if chars > Self::MAX_CHARS {
            return Err(ValidationError::TooLong {
                field: "principal",
                max: Self::MAX_CHARS,
                actual: chars,
            });
        }
        if name.chars().any(char::is_control) {
            return Err(ValidationError::BadCharacters {
                field: "principal",
                allowed: "a single line without control characters",
            });
        }
        Ok(Self(name.to_owned()))
    }

    /// The principal of every request when authentication is off.
    #[must_use]
    pub fn anonymous() -> Self {
        Self(Self::ANONYMOUS.to_owned())
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_principal_is_one_non_blank_line_kept_as_given() {
        assert_eq!(Principal::parse(" alice ").unwrap().as_str(), " alice ");
        assert_eq!(Principal::anonymous().as_str(), "anonymous");
        for bad in ["", "   ", "a\nb", "tab\there"] {
            assert!(Principal::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Principal::parse(&"x".repeat(255)).is_ok());
        assert!(Principal::parse(&"x".repeat(256)).is_err());
    }
}
