//! Assistants: stored whole, unique by name among their owner's, scoped by
//! owner like sessions, listed newest first in pages.

use std::collections::BTreeSet;

use colloquy_domain::{AssistantId, AssistantName, Instructions, ModelName, Timestamp};
use colloquy_ports::{AssistantChanges, Page, RepoError};

use crate::support::{
    alice, bob, new_assistant, on_both_backends, stored_assistant, Backend, TestDb,
};

fn name(text: &str) -> AssistantName {
    AssistantName::parse(text).unwrap()
}

fn ids(page: &Page<colloquy_domain::Assistant>) -> Vec<AssistantId> {
    page.items.iter().map(|assistant| assistant.id).collect()
}

fn assert_not_found<T: std::fmt::Debug>(outcome: Result<T, RepoError>) {
    assert!(
        matches!(outcome, Err(RepoError::NotFound)),
        "expected NotFound, got {outcome:?}"
    );
}

fn assert_conflict<T: std::fmt::Debug>(outcome: Result<T, RepoError>) {
    assert!(
        matches!(outcome, Err(RepoError::Conflict)),
        "expected Conflict, got {outcome:?}"
    );
}

async fn an_assistant_reads_back_whole(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut full = new_assistant(alice(), "Critic");
    full.created_at = Timestamp::from_micros(1_700_000_000_123_456);
    full.updated_at = Timestamp::from_micros(1_700_000_000_999_999);
    let mut bare = new_assistant(alice(), "Poet");
    bare.instructions = None;
    bare.tools = Vec::new();
    for assistant in [&full, &bare] {
        db.repo.create_assistant(assistant).await.unwrap();
        assert_eq!(
            &db.repo.get_assistant(&alice(), assistant.id).await.unwrap(),
            assistant
        );
    }
}

async fn a_name_taken_by_the_owner_is_a_conflict_and_stores_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let first = stored_assistant(&*db.repo, "Critic").await;
    let twin = new_assistant(alice(), "Critic");

    assert_conflict(db.repo.create_assistant(&twin).await);
    assert_not_found(db.repo.get_assistant(&alice(), twin.id).await);
    let listed = db.repo.list_assistants(&alice(), 10, None).await.unwrap();
    assert_eq!(listed.items, [first]);

    // Names are unique per owner, not across owners; and they are compared
    // as written.
    let bobs = new_assistant(bob(), "Critic");
    db.repo.create_assistant(&bobs).await.unwrap();
    db.repo
        .create_assistant(&new_assistant(alice(), "critic"))
        .await
        .unwrap();
}

async fn renaming_to_a_taken_name_is_a_conflict_and_changes_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let critic = stored_assistant(&*db.repo, "Critic").await;
    let poet = stored_assistant(&*db.repo, "Poet").await;
    let rename = |to: &str| AssistantChanges {
        name: Some(name(to)),
        model: Some(ModelName::parse("other-model").unwrap()),
        ..AssistantChanges::default()
    };

    assert_conflict(
        db.repo
            .update_assistant(&alice(), poet.id, &rename("Critic"), Timestamp::now())
            .await,
    );
    assert_eq!(
        db.repo.get_assistant(&alice(), poet.id).await.unwrap(),
        poet,
        "none of the change was stored"
    );

    let bard = db
        .repo
        .update_assistant(&alice(), poet.id, &rename("Bard"), Timestamp::now())
        .await
        .unwrap();
    assert_eq!(bard.name, name("Bard"));
    // Its old name is free now, and keeping one's own name is no conflict.
    db.repo
        .update_assistant(&alice(), critic.id, &rename("Poet"), Timestamp::now())
        .await
        .unwrap();
    db.repo
        .update_assistant(&alice(), critic.id, &rename("Poet"), Timestamp::now())
        .await
        .unwrap();
}

async fn an_update_writes_only_what_it_changes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let assistant = stored_assistant(&*db.repo, "Critic").await;
    let at = Timestamp::from_micros(assistant.updated_at.as_micros() + 60_000_000);

    let cleared = db
        .repo
        .update_assistant(
            &alice(),
            assistant.id,
            &AssistantChanges {
                instructions: Some(None),
                tools: Some(Vec::new()),
                ..AssistantChanges::default()
            },
            at,
        )
        .await
        .unwrap();
    let expected = colloquy_domain::Assistant {
        instructions: None,
        tools: Vec::new(),
        updated_at: at,
        ..assistant.clone()
    };
    assert_eq!(cleared, expected);
    assert_eq!(
        db.repo.get_assistant(&alice(), assistant.id).await.unwrap(),
        expected,
        "what it returns is what is stored"
    );

    let later = Timestamp::from_micros(at.as_micros() + 1);
    let changed = db
        .repo
        .update_assistant(
            &alice(),
            assistant.id,
            &AssistantChanges {
                instructions: Some(Some(Instructions::parse("Be kind.").unwrap())),
                model: Some(ModelName::parse("llama3.1:8b").unwrap()),
                tools: Some(vec!["calculator".to_owned()]),
                ..AssistantChanges::default()
            },
            later,
        )
        .await
        .unwrap();
    assert_eq!(changed.name, assistant.name, "the name stays");
    assert_eq!(changed.created_at, assistant.created_at);
    assert_eq!(changed.updated_at, later);
    assert_eq!(
        changed.instructions.as_ref().map(Instructions::as_str),
        Some("Be kind.")
    );
    assert_eq!(changed.model.as_str(), "llama3.1:8b");
    assert_eq!(changed.tools, ["calculator"]);

    let touched = db
        .repo
        .update_assistant(
            &alice(),
            assistant.id,
            &AssistantChanges::default(),
            Timestamp::from_micros(later.as_micros() + 1),
        )
        .await
        .unwrap();
    assert_eq!(
        touched,
        colloquy_domain::Assistant {
            updated_at: Timestamp::from_micros(later.as_micros() + 1),
            ..changed
        },
        "an empty change only moves updated_at"
    );
}

async fn another_principal_finds_and_changes_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let assistant = stored_assistant(&*db.repo, "Critic").await;

    assert_not_found(db.repo.get_assistant(&bob(), assistant.id).await);
    assert_eq!(
        db.repo
            .find_assistants(&bob(), &[assistant.id])
            .await
            .unwrap(),
        []
    );
    let listed = db.repo.list_assistants(&bob(), 10, None).await.unwrap();
    assert!(listed.items.is_empty() && !listed.has_more, "{listed:?}");
    assert_not_found(
        db.repo
            .update_assistant(
                &bob(),
                assistant.id,
                &AssistantChanges {
                    name: Some(name("Mine now")),
                    ..AssistantChanges::default()
                },
                Timestamp::now(),
            )
            .await,
    );
    assert_not_found(db.repo.delete_assistant(&bob(), assistant.id).await);
    assert_eq!(
        db.repo.get_assistant(&alice(), assistant.id).await.unwrap(),
        assistant,
        "untouched"
    );
}

async fn unknown_assistants_are_not_found(backend: Backend) {
    let db = TestDb::new(backend).await;
    let unknown = AssistantId::new();
    assert_not_found(db.repo.get_assistant(&alice(), unknown).await);
    assert_not_found(
        db.repo
            .update_assistant(
                &alice(),
                unknown,
                &AssistantChanges::default(),
                Timestamp::now(),
            )
            .await,
    );
    assert_not_found(db.repo.delete_assistant(&alice(), unknown).await);
}

async fn finding_assistants_answers_those_the_owner_has(backend: Backend) {
    let db = TestDb::new(backend).await;
    let critic = stored_assistant(&*db.repo, "Critic").await;
    let poet = stored_assistant(&*db.repo, "Poet").await;
    let _unasked = stored_assistant(&*db.repo, "Judge").await;
    let bobs = new_assistant(bob(), "Bob's");
    db.repo.create_assistant(&bobs).await.unwrap();

    let found = db
        .repo
        .find_assistants(&alice(), &[poet.id, AssistantId::new(), bobs.id, critic.id])
        .await
        .unwrap();
    let found: BTreeSet<_> = found.into_iter().map(|assistant| assistant.id).collect();
    assert_eq!(found, BTreeSet::from([critic.id, poet.id]));
    let whole = db
        .repo
        .find_assistants(&alice(), &[critic.id, critic.id])
        .await
        .unwrap();
    assert_eq!(whole, [critic], "an id asked for twice is one answer");
    assert_eq!(db.repo.find_assistants(&alice(), &[]).await.unwrap(), []);
}

async fn assistants_list_newest_first_in_pages(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut made = Vec::new();
    for index in 0..5 {
        made.push(
            stored_assistant(&*db.repo, &format!("Voice {index}"))
                .await
                .id,
        );
    }
    db.repo
        .create_assistant(&new_assistant(bob(), "Not alice's"))
        .await
        .unwrap();
    let newest_first: Vec<_> = made.iter().rev().copied().collect();

    let first = db.repo.list_assistants(&alice(), 2, None).await.unwrap();
    assert_eq!(ids(&first), newest_first[..2]);
    assert!(first.has_more);
    let second = db
        .repo
        .list_assistants(&alice(), 2, first.items.last().map(|a| a.id))
        .await
        .unwrap();
    assert_eq!(ids(&second), newest_first[2..4]);
    assert!(second.has_more);
    let last = db
        .repo
        .list_assistants(&alice(), 2, second.items.last().map(|a| a.id))
        .await
        .unwrap();
    assert_eq!(ids(&last), newest_first[4..]);
    assert!(!last.has_more, "has_more is exact");
    let exact = db.repo.list_assistants(&alice(), 5, None).await.unwrap();
    assert_eq!(ids(&exact), newest_first);
    assert!(!exact.has_more, "a page that holds the rest exactly");

    // The cursor is a place in the order, whether or not it still exists.
    db.repo.delete_assistant(&alice(), made[3]).await.unwrap();
    let after_deleted = db
        .repo
        .list_assistants(&alice(), 10, Some(made[3]))
        .await
        .unwrap();
    assert_eq!(ids(&after_deleted), [made[2], made[1], made[0]]);
}

async fn a_deleted_assistant_is_gone_and_its_name_free(backend: Backend) {
    let db = TestDb::new(backend).await;
    let critic = stored_assistant(&*db.repo, "Critic").await;
    let poet = stored_assistant(&*db.repo, "Poet").await;

    db.repo.delete_assistant(&alice(), critic.id).await.unwrap();
    assert_not_found(db.repo.get_assistant(&alice(), critic.id).await);
    assert_not_found(db.repo.delete_assistant(&alice(), critic.id).await);
    assert_eq!(
        db.repo
            .list_assistants(&alice(), 10, None)
            .await
            .unwrap()
            .items,
        [poet]
    );
    stored_assistant(&*db.repo, "Critic").await;
}

/// Two writers of one name at once: the unique index lets exactly one in.
async fn of_two_creators_of_one_name_exactly_one_wins(backend: Backend) {
    let db = TestDb::new(backend).await;
    for round in 0..5 {
        let label = format!("Twin {round}");
        let calls: Vec<_> = (0..4)
            .map(|_| {
                let (repo, assistant) = (db.repo.clone(), new_assistant(alice(), &label));
                tokio::spawn(async move { repo.create_assistant(&assistant).await })
            })
            .collect();
        let mut won = 0;
        for call in calls {
            match call.await.unwrap() {
                Ok(()) => won += 1,
                Err(RepoError::Conflict) => {}
                Err(other) => panic!("round {round}: {other:?}"),
            }
        }
        assert_eq!(won, 1, "round {round}");
    }
    let listed = db.repo.list_assistants(&alice(), 10, None).await.unwrap();
    assert_eq!(listed.items.len(), 5);
}

on_both_backends! {
    an_assistant_reads_back_whole,
    a_name_taken_by_the_owner_is_a_conflict_and_stores_nothing,
    renaming_to_a_taken_name_is_a_conflict_and_changes_nothing,
    an_update_writes_only_what_it_changes,
    another_principal_finds_and_changes_nothing,
    unknown_assistants_are_not_found,
    finding_assistants_answers_those_the_owner_has,
    assistants_list_newest_first_in_pages,
    a_deleted_assistant_is_gone_and_its_name_free,
    #[multi_thread] of_two_creators_of_one_name_exactly_one_wins,
}
