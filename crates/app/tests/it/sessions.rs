use colloquy_app::{ChatError, NewSession, SessionPatch};
use colloquy_domain::Title;
use colloquy_ports::{MockChatRepository, MockLlmClient, SessionChanges};

use crate::support::{service, session};

#[tokio::test]
async fn a_new_session_gets_the_default_model_and_is_stored() {
    let mut repo = MockChatRepository::new();
    repo.expect_create_session()
        .withf(|session| session.model.as_str() == "test-model" && session.title.is_none())
        .times(1)
        .returning(|_| Ok(()));
    let created = service(repo, MockLlmClient::new())
        .create_session(&session().owner, NewSession::default())
        .await
        .unwrap();
    assert_eq!(created.message_count, 0);
}

#[tokio::test]
async fn invalid_session_fields_never_reach_the_store() {
    // No expectations: any call to the store would panic.
    let service = service(MockChatRepository::new(), MockLlmClient::new());
    let bad = NewSession {
        title: Some("two\nlines".into()),
        ..NewSession::default()
    };
    assert!(matches!(
        service.create_session(&session().owner, bad).await,
        Err(ChatError::Invalid(_))
    ));
    let bad = NewSession {
        model: Some("has space".into()),
        ..NewSession::default()
    };
    assert!(matches!(
        service.create_session(&session().owner, bad).await,
        Err(ChatError::Invalid(_))
    ));
    let bad = SessionPatch {
        system_prompt: Some(Some("   ".into())),
        ..SessionPatch::default()
    };
    assert!(matches!(
        service
            .update_session(&session().owner, session().id, bad)
            .await,
        Err(ChatError::Invalid(_))
    ));
}

#[tokio::test]
async fn a_patch_changes_only_what_it_names() {
    let original = session();
    let mut repo = MockChatRepository::new();
    let known = original.clone();
    repo.expect_get_session()
        .returning(move |_, _| Ok(known.clone()));
    let stored = original.clone();
    repo.expect_update_session()
        .withf(|_, _, changes, _| {
            *changes
                == SessionChanges {
                    title: Some(Some(Title::parse("Renamed").unwrap())),
                    ..SessionChanges::default()
                }
        })
        .times(1)
        .returning(move |_, _, changes, at| {
            let mut updated = stored.clone();
            updated.title = changes.title.clone().flatten();
            updated.updated_at = at;
            Ok(updated)
        });
    let patch = SessionPatch {
        title: Some(Some("Renamed".into())),
        ..SessionPatch::default()
    };
    let updated = service(repo, MockLlmClient::new())
        .update_session(&original.owner, original.id, patch)
        .await
        .unwrap();
    assert_eq!(updated.model, original.model);
    assert_eq!(updated.system_prompt, None);
}
