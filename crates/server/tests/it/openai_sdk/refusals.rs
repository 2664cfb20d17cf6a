//! What colloquy refuses, raised by the SDK as the classes an application
//! catches; and the models it lists. On a server that asks for API keys.

use serde_json::Value;

use super::run_scenario;
use crate::auth::new_key;
use crate::support::spawn_app_with;

fn refused<'a>(answer: &'a Value, case: &str) -> &'a Value {
    let refusal = &answer["refused"][case];
    assert!(
        !refusal["class"].is_null(),
        "{case} was not refused: {answer}"
    );
    refusal
}

#[tokio::test]
async fn refusals_raise_the_sdks_error_classes_and_the_models_are_listed() {
    let app = spawn_app_with(&[("COLLOQUY_AUTH", "keys"), ("COLLOQUY_MODELS", "fake-model")]).await;
    let key = new_key(&app, "sdk-user").await;

    let answer = run_scenario("errors", &app.url("/v1"), &key, &["gpt-unknown"]).await;

    let unknown = refused(&answer, "unknown_model");
    assert_eq!(unknown["class"], "NotFoundError", "{unknown}");
    assert_eq!(unknown["status"], 404);
    assert_eq!(unknown["code"], "model_not_found");
    assert!(
        unknown["message"].as_str().unwrap().contains("gpt-unknown"),
        "{unknown}"
    );

    for (case, param) in [("two_choices", "n"), ("temperature_text", "temperature")] {
        let bad = refused(&answer, case);
        assert_eq!(bad["class"], "BadRequestError", "{case}: {bad}");
        assert_eq!(bad["status"], 400);
        assert_eq!(bad["param"], param, "{case}: {bad}");
        assert_eq!(bad["type"], "invalid_request_error");
    }

    let wrong_key = refused(&answer, "wrong_key");
    assert_eq!(wrong_key["class"], "AuthenticationError", "{wrong_key}");
    assert_eq!(wrong_key["status"], 401);
    assert_eq!(wrong_key["code"], "invalid_api_key");
    assert_eq!(wrong_key["type"], "authentication_error");

    assert_eq!(answer["models"], serde_json::json!(["fake-model"]));
    assert_eq!(answer["model"]["id"], "fake-model");
    assert_eq!(answer["model"]["object"], "model");
    assert_eq!(
        app.fake.request_count(),
        0,
        "nothing refused reached the upstream"
    );
}
