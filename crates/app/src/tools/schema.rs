//! Checks a tool's arguments against its JSON Schema, for the part of JSON
//! Schema that strict-mode tool schemas use: `type`, `properties`,
//! `required`, `additionalProperties: false`, `items`, `maxLength`, `enum`.
//!
//! A keyword outside that part is ignored rather than refused, so a schema
//! may carry `description`s and other annotations freely.

use serde_json::Value;

/// `Ok` when `value` fits `schema`; else what does not fit, and where.
pub(crate) fn validate(schema: &Value, value: &Value) -> Result<(), String> {
    check(schema, value, "arguments")
}

fn check(schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(expected) = schema.get("type").and_then(Value::as_str) {
        if !has_type(value, expected) {
            return Err(format!(
                "`{at}` must be {}, not {}",
                article(expected),
                describe(value)
            ));
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            return Err(format!(
                "`{at}` must be one of {}",
                Value::Array(allowed.clone())
            ));
        }
    }
    if let (Some(max), Some(text)) = (
        schema.get("maxLength").and_then(Value::as_u64),
        value.as_str(),
    ) {
        let length = text.chars().count() as u64;
        if length > max {
            return Err(format!(
                "`{at}` is {length} characters long; at most {max} are allowed"
            ));
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (index, item) in array.iter().enumerate() {
            check(items, item, &format!("{at}[{index}]"))?;
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(name) = name.as_str() else { continue };
            if !object.contains_key(name) {
                return Err(format!("`{at}` lacks the required field `{name}`"));
            }
        }
        for (name, field) in object {
            match properties.and_then(|properties| properties.get(name)) {
                Some(field_schema) => check(field_schema, field, name)?,
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    return Err(format!("`{at}` has an unknown field `{name}`"));
                }
                None => {}
            }
        }
    }
    Ok(())
}

fn has_type(value: &Value, expected: &str) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        // A type this checker does not know is not held against the value.
        _ => true,
    }
}

fn article(kind: &str) -> String {
    match kind {
        "object" | "array" | "integer" => format!("an {kind}"),
        _ => format!("a {kind}"),
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "expression": {"type": "string", "maxLength": 5},
                "unit": {"type": "string", "enum": ["s", "ms"]},
                "tags": {"type": "array", "items": {"type": "string"}}
            },
            "required": ["expression"],
            "additionalProperties": false
        })
    }

    #[test]
    fn accepts_what_fits() {
        assert_eq!(
            validate(&schema(), &json!({"expression": "1+1", "tags": ["a"]})),
            Ok(())
        );
    }

    #[test]
    fn names_what_does_not_fit() {
        let cases = [
            (json!([1]), "`arguments` must be an object, not an array"),
            (
                json!({}),
                "`arguments` lacks the required field `expression`",
            ),
            (
                json!({"expression": 3}),
                "`expression` must be a string, not a number",
            ),
            (
                json!({"expression": "123456"}),
                "`expression` is 6 characters long; at most 5 are allowed",
            ),
            (
                json!({"expression": "1", "x": 1}),
                "`arguments` has an unknown field `x`",
            ),
            (
                json!({"expression": "1", "unit": "h"}),
                "`unit` must be one of [\"s\",\"ms\"]",
            ),
            (
                json!({"expression": "1", "tags": [1]}),
                "`tags[0]` must be a string, not a number",
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(
                validate(&schema(), &value),
                Err(expected.to_owned()),
                "{value}"
            );
        }
    }
}
