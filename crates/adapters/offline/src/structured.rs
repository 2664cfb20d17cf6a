//! The offline model's answers to structured requests (`response_format`).
//!
//! It cannot understand a conversation, but it can describe one honestly:
//! each property of the requested JSON schema is filled from the
//! conversation's own words (a title from the first question, a summary that
//! counts the messages and quotes the first, highlights that quote the
//! questions, topics that are its most frequent long words). The answer
//! always fits the schema, so titles and summaries work without a key.

use std::collections::HashMap;

use colloquy_ports::{ChatRequest, PromptMessage, PromptRole};
use serde_json::{json, Map, Value};

/// JSON text fitting `schema` (JSON Schema text), built from `request`.
pub(crate) fn answer(request: &ChatRequest, schema: &str) -> String {
    let schema: Value = serde_json::from_str(schema).unwrap_or(Value::Null);
    // The last message is the instruction ("summarise the conversation
    // above"); what comes before it, system prompts aside, is the conversation.
    let conversation: Vec<&PromptMessage> = match request.messages.split_last() {
        Some((_, before)) => before
            .iter()
            .filter(|m| matches!(m.role, PromptRole::User | PromptRole::Assistant))
            .collect(),
        None => Vec::new(),
    };
    let questions: Vec<&str> = conversation
        .iter()
        .filter(|m| m.role == PromptRole::User)
        .map(|m| m.content.as_str())
        .collect();
    let mut object = Map::new();
    let properties = schema.get("properties").and_then(Value::as_object);
    for (name, property) in properties.into_iter().flatten() {
        object.insert(
            name.clone(),
            value_for(name, property, &conversation, &questions),
        );
    }
    Value::Object(object).to_string()
}

fn value_for(
    name: &str,
    property: &Value,
    conversation: &[&PromptMessage],
    questions: &[&str],
) -> Value {
    let first = questions.first().copied().unwrap_or("");
    match property.get("type").and_then(Value::as_str) {
        Some("string") => {
            let text = if name == "title" {
                first_words(first, 6)
            } else {
                format!(
                    "A conversation of {} messages, {} of them from the user, which began with \"{}\".",
                    conversation.len(),
                    questions.len(),
                    first_words(first, 12)
                )
            };
            json!(bounded(text, property))
        }
        Some("array") => {
            let item = property.get("items").unwrap_or(&Value::Null);
            let items: Vec<String> = if name.contains("topic") {
                frequent_words(questions, 3)
            } else {
                questions
                    .iter()
                    .take(3)
                    .map(|q| format!("Asked: {}", first_words(q, 10)))
                    .collect()
            };
            json!(items
                .into_iter()
                .map(|text| bounded(text, item))
                .collect::<Vec<_>>())
        }
        Some("integer" | "number") => json!(conversation.len()),
        Some("boolean") => json!(false),
        _ => Value::Null,
    }
}

/// The first `count` words of `text` on one line, with `…` when cut.
fn first_words(text: &str, count: usize) -> String {
    // Control characters count as spaces: a quote must stay one line, or the
    // title or summary it goes into is refused.
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .collect();
    let mut quoted = words
        .iter()
        .take(count)
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    if words.len() > count {
        quoted.push('…');
    }
    quoted
}

/// `text`, cut to the `maxLength` the schema gives, if any.
fn bounded(text: String, schema: &Value) -> String {
    match schema.get("maxLength").and_then(Value::as_u64) {
        Some(max) => text
            .chars()
            .take(usize::try_from(max).unwrap_or(usize::MAX))
            .collect(),
        None => text,
    }
}

/// The most frequent words of six letters or more (shorter ones are mostly
/// "about", "which", "there"…), most frequent first,
/// ties in order of appearance.
fn frequent_words(texts: &[&str], count: usize) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for text in texts {
        for word in text
            .split(|c: char| !c.is_alphabetic())
            .filter(|w| w.chars().count() >= 6)
        {
            let word = word.to_lowercase();
            let tally = counts.entry(word.clone()).or_insert(0);
            if *tally == 0 {
                seen.push(word);
            }
            *tally += 1;
        }
    }
    // A stable sort keeps the order of appearance among equals.
    seen.sort_by_key(|word| std::cmp::Reverse(counts[word]));
    seen.truncate(count);
    seen
}

#[cfg(test)]
mod tests {
    use colloquy_ports::ResponseFormat;

    use super::*;

    fn request(turns: &[(PromptRole, &str)]) -> ChatRequest {
        let messages = turns
            .iter()
            .map(|(role, text)| PromptMessage::new(*role, *text))
            .collect();
        ChatRequest::new("offline", messages)
    }

    #[test]
    fn a_title_is_the_first_words_of_the_first_question() {
        let schema =
            r#"{"type":"object","properties":{"title":{"type":"string"}},"required":["title"]}"#;
        let request = request(&[
            (PromptRole::System, "name it"),
            (
                PromptRole::User,
                "How do I bake sourdough bread at home with rye flour?",
            ),
            (PromptRole::Assistant, "[offline model] You said…"),
            (PromptRole::User, "Give the conversation above a title."),
        ]);
        assert_eq!(
            answer(&request, schema),
            r#"{"title":"How do I bake sourdough bread…"}"#
        );
    }

    #[test]
    fn a_summary_fills_every_field_from_the_conversation() {
        let schema = r#"{"type":"object","properties":{
            "summary":{"type":"string","maxLength":2000},
            "highlights":{"type":"array","items":{"type":"string","maxLength":300}},
            "topics":{"type":"array","items":{"type":"string","maxLength":60}}}}"#;
        let mut request = request(&[
            (PromptRole::System, "summarise"),
            (PromptRole::User, "Tell me about rust lifetimes"),
            (PromptRole::Assistant, "echo"),
            (PromptRole::User, "More about lifetimes and borrowing"),
            (PromptRole::Assistant, "echo"),
            (PromptRole::User, "Summarise the conversation above."),
        ]);
        request.response_format = Some(ResponseFormat::JsonSchema {
            name: "s".into(),
            schema: schema.into(),
        });
        let value: Value = serde_json::from_str(&answer(&request, schema)).unwrap();
        assert_eq!(
            value["summary"],
            "A conversation of 4 messages, 2 of them from the user, which began with \"Tell me about rust lifetimes\"."
        );
        assert_eq!(
            value["highlights"],
            json!([
                "Asked: Tell me about rust lifetimes",
                "Asked: More about lifetimes and borrowing"
            ])
        );
        assert_eq!(value["topics"], json!(["lifetimes", "borrowing"]));
    }

    #[test]
    fn quotes_never_carry_control_characters() {
        assert_eq!(first_words("a\u{0}b\u{1c}c\u{85} d", 10), "a b c d");
    }
}
