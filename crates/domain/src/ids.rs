use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// A string that is not a UUID was given where an id was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseIdError {
    pub input: String,
}

impl fmt::Display for ParseIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not a valid id (expected a UUID)", self.input)
    }
}

impl std::error::Error for ParseIdError {}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Ids are UUID v7: they sort by creation time, which is what makes
        /// cursor pagination (`after=<id>`) a plain comparison.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh id. Ids made in one process are strictly increasing.
            #[must_use]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            #[must_use]
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            #[must_use]
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }

            /// Parses any textual form of a UUID.
            ///
            /// # Errors
            /// [`ParseIdError`] when `input` is not a UUID.
            pub fn parse(input: &str) -> Result<Self, ParseIdError> {
                Uuid::parse_str(input).map(Self).map_err(|_| ParseIdError {
                    input: input.chars().take(64).collect(),
                })
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // Hyphenated lower case: the form every API answer and the
                // database use, so ids compare equal as strings too.
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }
    };
}

uuid_id!(
    /// Identifies a chat session.
    SessionId
);
uuid_id!(
    /// Identifies one message of a session.
    MessageId
);
uuid_id!(
    /// Identifies an assistant: a named voice a principal defined.
    AssistantId
);
uuid_id!(
    /// Identifies an API key. Not a secret: it is what `colloquy keys list`
    /// shows and `colloquy keys revoke` takes, and it may be logged.
    ApiKeyId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_made_in_a_row_are_strictly_increasing() {
        let ids: Vec<MessageId> = (0..10_000).map(|_| MessageId::new()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let text: Vec<String> = ids.iter().map(ToString::to_string).collect();
        assert!(
            text.windows(2).all(|w| w[0] < w[1]),
            "string order must match"
        );
    }

    #[test]
    fn parse_round_trips_and_rejects_junk() {
        let id = SessionId::new();
        assert_eq!(SessionId::parse(&id.to_string()), Ok(id));
        assert!(SessionId::parse("not-a-uuid").is_err());
        assert!(SessionId::parse("").is_err());
    }
}
