//! The `assistants` rows.

use colloquy_domain::{
    Assistant, AssistantId, AssistantName, Instructions, ModelName, Principal, Timestamp,
};
use colloquy_ports::AssistantChanges;
use diesel::prelude::*;

use super::storable;
use crate::error::StoreError;
use crate::schema::assistants;

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(
    table_name = assistants,
    check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg)
)]
pub(crate) struct AssistantRow {
    pub id: String,
    pub owner: String,
    pub name: String,
    pub instructions: Option<String>,
    pub model: String,
    pub tools: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The stored form of an [`AssistantChanges`]: an outer `None` leaves its
/// column out of the UPDATE, `Some(None)` stores NULL. `updated_at` is always
/// written, so the statement never has an empty SET.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = assistants)]
pub(crate) struct AssistantChangeset {
    pub name: Option<String>,
    pub instructions: Option<Option<String>>,
    pub model: Option<String>,
    pub tools: Option<String>,
    pub updated_at: i64,
}

impl AssistantRow {
    pub(crate) fn from_domain(assistant: &Assistant) -> Result<Self, StoreError> {
        Ok(Self {
            id: assistant.id.to_string(),
            owner: assistant.owner.as_str().to_owned(),
            name: assistant.name.as_str().to_owned(),
            instructions: instructions_text(assistant.instructions.as_ref()),
            model: assistant.model.as_str().to_owned(),
            tools: encode_tools(&assistant.tools)?,
            created_at: assistant.created_at.as_micros(),
            updated_at: assistant.updated_at.as_micros(),
        })
    }

    pub(crate) fn into_domain(self) -> Result<Assistant, StoreError> {
        let corrupt =
            |what: String| StoreError::Corrupt(format!("assistants row {}: {what}", self.id));
        let id = AssistantId::parse(&self.id).map_err(|error| corrupt(error.to_string()))?;
        let owner = Principal::parse(&self.owner).map_err(|error| corrupt(error.to_string()))?;
        let name = AssistantName::parse(&self.name).map_err(|error| corrupt(error.to_string()))?;
        let instructions = self
            .instructions
            .as_deref()
            .map(Instructions::parse)
            .transpose()
            .map_err(|error| corrupt(error.to_string()))?;
        let model = ModelName::parse(&self.model).map_err(|error| corrupt(error.to_string()))?;
        let tools: Vec<String> =
            serde_json::from_str(&self.tools).map_err(|error| corrupt(error.to_string()))?;
        Ok(Assistant {
            id,
            owner,
            name,
            instructions,
            model,
            tools,
            created_at: Timestamp::from_micros(self.created_at),
            updated_at: Timestamp::from_micros(self.updated_at),
        })
    }
}

impl AssistantChangeset {
    pub(crate) fn of(changes: &AssistantChanges, at: Timestamp) -> Result<Self, StoreError> {
        Ok(Self {
            name: changes.name.as_ref().map(|name| name.as_str().to_owned()),
            instructions: changes
                .instructions
                .as_ref()
                .map(|instructions| instructions_text(instructions.as_ref())),
            model: changes
                .model
                .as_ref()
                .map(|model| model.as_str().to_owned()),
            tools: changes.tools.as_deref().map(encode_tools).transpose()?,
            updated_at: at.as_micros(),
        })
    }
}

fn instructions_text(instructions: Option<&Instructions>) -> Option<String> {
    instructions.map(|instructions| storable(instructions.as_str()))
}

/// Tool names as a JSON array of strings. The names are configuration's
/// (the use cases check them), so a NUL in one is stored as any text is.
fn encode_tools(tools: &[String]) -> Result<String, StoreError> {
    let stored: Vec<String> = tools.iter().map(|tool| storable(tool)).collect();
    serde_json::to_string(&stored)
        .map_err(|error| StoreError::Invalid(format!("cannot encode tool names: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assistant() -> Assistant {
        Assistant::new(
            Principal::parse("alice").unwrap(),
            AssistantName::parse("Critic").unwrap(),
            Some(Instructions::parse("Argue the other side.").unwrap()),
            ModelName::parse("m").unwrap(),
            vec!["calculator".to_owned(), "current_time".to_owned()],
        )
    }

    #[test]
    fn tools_are_a_json_array_of_names_and_read_back() {
        let assistant = assistant();
        let row = AssistantRow::from_domain(&assistant).unwrap();
        assert_eq!(row.tools, r#"["calculator","current_time"]"#);
        assert_eq!(row.into_domain().unwrap(), assistant);
    }

    /// A name the domain would refuse only shows up in a damaged database;
    /// it is then corrupt, not a panic.
    #[test]
    fn a_stored_name_that_is_no_assistant_name_is_corrupt() {
        for bad in ["", "two\nlines"] {
            let row = AssistantRow {
                name: bad.to_owned(),
                ..AssistantRow::from_domain(&assistant()).unwrap()
            };
            let error = row.into_domain().unwrap_err();
            assert!(
                matches!(&error, StoreError::Corrupt(detail) if detail.contains("name")),
                "{bad:?}: {error:?}"
            );
        }
    }
}
