//! `calculator`: evaluates an arithmetic expression.
//!
//! The expression is parsed and evaluated by `exmex`, a parser of
//! mathematical expressions: numbers, `+ - * / ^`, parentheses, and pure
//! functions such as `sqrt` or `sin`. Nothing else can be said in it, so
//! there is no code to execute. The size and the nesting depth are bounded
//! before parsing, so that neither the parser's recursion nor its work can be
//! driven by a hostile expression.

use async_trait::async_trait;
use serde_json::{json, Value};

use super::{Tool, ToolError};

/// Evaluates arithmetic expressions. See the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Calculator;

impl Calculator {
    /// Longest expression accepted, in characters.
    pub const MAX_CHARS: usize = 200;
    /// Deepest nesting of parentheses accepted.
    pub const MAX_DEPTH: usize = 16;

    /// The value of `expression`.
    ///
    /// # Errors
    /// [`ToolError::InvalidArguments`] for an expression that is too long,
    /// too deeply nested, or not arithmetic; [`ToolError::Failed`] when the
    /// result is not a finite number (a division by zero, an overflow).
    pub fn evaluate(expression: &str) -> Result<Value, ToolError> {
        let length = expression.chars().count();
        if length > Self::MAX_CHARS {
            return Err(ToolError::InvalidArguments(format!(
                "the expression is {length} characters long; at most {} are allowed",
                Self::MAX_CHARS
            )));
        }
        if expression.trim().is_empty() {
            return Err(ToolError::InvalidArguments(
                "the expression is empty".to_owned(),
            ));
        }
        if nesting_depth(expression) > Self::MAX_DEPTH {
            return Err(ToolError::InvalidArguments(format!(
                "the expression nests parentheses more than {} deep",
                Self::MAX_DEPTH
            )));
        }
        let value = exmex::eval_str::<f64>(expression).map_err(|error| {
            ToolError::InvalidArguments(format!(
                "`{expression}` is not an arithmetic expression: {error}"
            ))
        })?;
        if !value.is_finite() {
            return Err(ToolError::Failed(format!(
                "`{expression}` has no finite value (a division by zero or an overflow)"
            )));
        }
        Ok(number(value))
    }
}

/// How deep parentheses nest, counting every kind of bracket.
fn nesting_depth(expression: &str) -> usize {
    let mut depth = 0_usize;
    let mut deepest = 0;
    for c in expression.chars() {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// A whole result is written as an integer (`14`, not `14.0`), as a person
/// and the model expect; anything else as the float it is.
fn number(value: f64) -> Value {
    // 2^53: beyond it not every integer is a float, and the float is the truth.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if value.fract() == 0.0 && value.abs() <= EXACT {
        #[allow(clippy::cast_possible_truncation)] // whole and within ±2^53, so exact
        let whole = value as i64;
        return json!(whole);
    }
    json!(value)
}

#[async_trait]
impl Tool for Calculator {
    fn name(&self) -> &str {
        "calculator"
    }

    fn description(&self) -> &str {
        "Evaluates an arithmetic expression exactly as a calculator would and returns its value. \
         Supports numbers, + - * / ^ (power), parentheses, and functions such as sqrt, abs, ln, log, \
         exp, sin, cos and tan, and the constants PI and E. Use it for any arithmetic beyond the trivial."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "expression": {
                    "type": "string",
                    "description": "The expression, e.g. \"2*(3+4)\" or \"sqrt(2)/3\".",
                    "maxLength": Self::MAX_CHARS
                }
            },
            "required": ["expression"],
            "additionalProperties": false
        })
    }

    async fn call(&self, arguments: Value) -> Result<Value, ToolError> {
        let expression = arguments
            .get("expression")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ToolError::InvalidArguments("`expression` must be a string".to_owned())
            })?;
        Ok(json!({ "expression": expression, "value": Self::evaluate(expression)? }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluates_arithmetic_and_keeps_whole_results_whole() {
        assert_eq!(Calculator::evaluate("2*(3+4)"), Ok(json!(14)));
        assert_eq!(Calculator::evaluate("7/2"), Ok(json!(3.5)));
        assert_eq!(Calculator::evaluate("2^10 - 24"), Ok(json!(1000)));
        assert_eq!(Calculator::evaluate("sqrt(16)"), Ok(json!(4)));
        assert_eq!(Calculator::evaluate("-3 * 3"), Ok(json!(-9)));
    }

    #[test]
    fn refuses_what_is_not_arithmetic_or_too_big() {
        for junk in ["", "2 +", "rm -rf /", "x + 1", "std::process::exit(1)"] {
            assert!(
                matches!(
                    Calculator::evaluate(junk),
                    Err(ToolError::InvalidArguments(_))
                ),
                "{junk:?} must be refused"
            );
        }
        let long = "1+".repeat(150) + "1";
        assert!(
            matches!(Calculator::evaluate(&long), Err(ToolError::InvalidArguments(m)) if m.contains("at most 200"))
        );
        let deep = "(".repeat(40) + "1" + &")".repeat(40);
        assert!(
            matches!(Calculator::evaluate(&deep), Err(ToolError::InvalidArguments(m)) if m.contains("16 deep"))
        );
        assert!(matches!(
            Calculator::evaluate("1/0"),
            Err(ToolError::Failed(_))
        ));
        assert!(matches!(
            Calculator::evaluate("10^400"),
            Err(ToolError::Failed(_))
        ));
    }

    #[tokio::test]
    async fn answers_with_the_expression_and_its_value() {
        let result = Calculator.call(json!({"expression": "2*(3+4)"})).await;
        assert_eq!(result, Ok(json!({"expression": "2*(3+4)", "value": 14})));
    }
}
