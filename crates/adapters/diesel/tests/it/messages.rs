use colloquy_domain::{
    ErrorCode, Message, MessageId, MessageStatus, SessionId, Timestamp, ToolCall, Usage,
};
use colloquy_ports::{RepoError, SessionChanges};

use crate::support::{
    alice, all_messages, assert_user, chain, finished_reply, micros_now, new_session,
    on_both_backends, reply_to, stored_session, streaming_reply, user_message, Backend, TestDb,
};

async fn appended_messages_read_back_whole(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let question = user_message(session.id, "  What is the weather?\n");
    let reply = finished_reply(session.id);
    db.repo
        .append_messages(&alice(), &[question.clone(), reply.clone()])
        .await
        .unwrap();

    let page = db
        .repo
        .list_messages(&alice(), session.id, 10, None)
        .await
        .unwrap();
    assert_eq!(page.items, [question, reply]);
    assert!(!page.has_more);
}

async fn appending_bumps_the_count_and_the_update_time(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;

    let before = micros_now();
    let two = chain(
        None,
        vec![user_message(session.id, "1"), streaming_reply(session.id)],
    );
    db.repo.append_messages(&alice(), &two).await.unwrap();
    let after_two = db.repo.get_session(&alice(), session.id).await.unwrap();
    assert_eq!(after_two.message_count, 2);
    assert_eq!(after_two.head_message_id, Some(two[1].id));
    assert!(
        after_two.updated_at.as_micros() >= before,
        "updated_at moves to now"
    );
    assert_eq!(after_two.created_at, session.created_at);

    let third = reply_to(&two[1], user_message(session.id, "3"));
    db.repo
        .append_messages(&alice(), std::slice::from_ref(&third))
        .await
        .unwrap();
    let after_three = db.repo.get_session(&alice(), session.id).await.unwrap();
    assert_eq!(after_three.message_count, 3);
    assert_eq!(after_three.head_message_id, Some(third.id));
    assert!(after_three.updated_at >= after_two.updated_at);
}

async fn updated_at_never_moves_backwards(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let future = Timestamp::from_micros(micros_now() + 3_600_000_000);
    db.repo
        .update_session(&alice(), session.id, &SessionChanges::default(), future)
        .await
        .unwrap();

    db.repo
        .append_messages(&alice(), &[user_message(session.id, "hi")])
        .await
        .unwrap();
    assert_eq!(
        db.repo
            .get_session(&alice(), session.id)
            .await
            .unwrap()
            .updated_at,
        future
    );
}

async fn appending_to_an_unknown_session_is_not_found_and_stores_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let ghost = SessionId::new();
    let error = db
        .repo
        .append_messages(&alice(), &[user_message(ghost, "hello?")])
        .await
        .unwrap_err();
    assert!(matches!(error, RepoError::NotFound), "{error:?}");

    // The session appears later: it must still be empty.
    let mut session = new_session();
    session.id = ghost;
    db.repo.create_session(&session).await.unwrap();
    assert!(db
        .repo
        .list_messages(&alice(), ghost, 10, None)
        .await
        .unwrap()
        .items
        .is_empty());
}

async fn a_failing_append_stores_none_of_its_messages(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let first = user_message(session.id, "first");
    db.repo
        .append_messages(&alice(), std::slice::from_ref(&first))
        .await
        .unwrap();

    // The second message repeats an id: the whole batch must roll back.
    let fresh = user_message(session.id, "fresh");
    let error = db
        .repo
        .append_messages(&alice(), &[fresh, first.clone()])
        .await
        .unwrap_err();
    assert!(matches!(error, RepoError::Unknown(_)), "{error:?}");

    assert_eq!(all_messages(&*db.repo, session.id, 10).await, [first]);
    assert_eq!(
        db.repo
            .get_session(&alice(), session.id)
            .await
            .unwrap()
            .message_count,
        1
    );
}

async fn an_append_mixing_sessions_is_refused_whole(backend: Backend) {
    let db = TestDb::new(backend).await;
    let one = stored_session(&*db.repo).await;
    let two = stored_session(&*db.repo).await;
    let error = db
        .repo
        .append_messages(
            &alice(),
            &[user_message(one.id, "a"), user_message(two.id, "b")],
        )
        .await
        .unwrap_err();
    assert!(matches!(error, RepoError::Unknown(_)), "{error:?}");
    assert!(format!("{error:#}").contains("two sessions"), "{error:#}");
    assert_eq!(
        db.repo
            .get_session(&alice(), one.id)
            .await
            .unwrap()
            .message_count,
        0
    );
    assert_eq!(
        db.repo
            .get_session(&alice(), two.id)
            .await
            .unwrap()
            .message_count,
        0
    );
}

async fn appending_nothing_changes_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    db.repo.append_messages(&alice(), &[]).await.unwrap();
    assert_eq!(
        db.repo.get_session(&alice(), session.id).await.unwrap(),
        session
    );
}

/// Seven messages in one session, appended in two batches.
async fn seven_messages(db: &TestDb, session: SessionId) -> Vec<Message> {
    let messages = chain(
        None,
        (1..=7)
            .map(|n| user_message(session, &format!("m{n}")))
            .collect(),
    );
    db.repo
        .append_messages(&alice(), &messages[..3])
        .await
        .unwrap();
    db.repo
        .append_messages(&alice(), &messages[3..])
        .await
        .unwrap();
    messages
}

async fn messages_list_oldest_first_in_pages(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let m = seven_messages(&db, session.id).await;

    let first = db
        .repo
        .list_messages(&alice(), session.id, 3, None)
        .await
        .unwrap();
    assert_eq!(first.items, m[..3]);
    assert!(first.has_more);
    let second = db
        .repo
        .list_messages(&alice(), session.id, 3, Some(m[2].id))
        .await
        .unwrap();
    assert_eq!(second.items, m[3..6]);
    assert!(second.has_more);
    let last = db
        .repo
        .list_messages(&alice(), session.id, 3, Some(m[5].id))
        .await
        .unwrap();
    assert_eq!(last.items, m[6..]);
    assert!(!last.has_more);
    let past_the_end = db
        .repo
        .list_messages(&alice(), session.id, 3, Some(m[6].id))
        .await
        .unwrap();
    assert!(past_the_end.items.is_empty() && !past_the_end.has_more);
    assert_user(&first.items[0], "m1");
}

async fn message_has_more_is_exact_at_the_page_boundary(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let m = seven_messages(&db, session.id).await;

    let exact = db
        .repo
        .list_messages(&alice(), session.id, 7, None)
        .await
        .unwrap();
    assert_eq!(exact.items, m);
    assert!(!exact.has_more);
    let one_short = db
        .repo
        .list_messages(&alice(), session.id, 6, None)
        .await
        .unwrap();
    assert_eq!(one_short.items, m[..6]);
    assert!(one_short.has_more);
    let exact_after_cursor = db
        .repo
        .list_messages(&alice(), session.id, 4, Some(m[2].id))
        .await
        .unwrap();
    assert_eq!(exact_after_cursor.items, m[3..]);
    assert!(!exact_after_cursor.has_more);
    assert_eq!(
        all_messages(&*db.repo, session.id, 2).await,
        m,
        "walking pages of 2 sees each once"
    );
}

async fn the_message_cursor_need_not_exist(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let before = user_message(session.id, "before");
    let never_stored = MessageId::new();
    let after = user_message(session.id, "after");
    db.repo
        .append_messages(&alice(), &[before, after.clone()])
        .await
        .unwrap();

    let page = db
        .repo
        .list_messages(&alice(), session.id, 10, Some(never_stored))
        .await
        .unwrap();
    assert_eq!(page.items, [after]);
}

async fn a_session_lists_only_its_own_messages(backend: Backend) {
    let db = TestDb::new(backend).await;
    let one = stored_session(&*db.repo).await;
    let two = stored_session(&*db.repo).await;
    let mut mine = Vec::new();
    for n in 0..4 {
        let message = user_message(one.id, &format!("one {n}"));
        db.repo
            .append_messages(&alice(), std::slice::from_ref(&message))
            .await
            .unwrap();
        mine.push(message);
        db.repo
            .append_messages(&alice(), &[user_message(two.id, &format!("two {n}"))])
            .await
            .unwrap();
    }

    assert_eq!(all_messages(&*db.repo, one.id, 3).await, mine);
    assert_eq!(
        db.repo
            .list_messages(&alice(), two.id, 10, None)
            .await
            .unwrap()
            .items
            .len(),
        4
    );
}

async fn listing_an_unknown_session_is_not_found(backend: Backend) {
    let db = TestDb::new(backend).await;
    let error = db
        .repo
        .list_messages(&alice(), SessionId::new(), 10, None)
        .await
        .unwrap_err();
    assert!(matches!(error, RepoError::NotFound), "{error:?}");
    let error = db
        .repo
        .recent_messages(&alice(), SessionId::new(), None, 10)
        .await
        .unwrap_err();
    assert!(matches!(error, RepoError::NotFound), "{error:?}");
}

async fn an_empty_session_lists_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let page = db
        .repo
        .list_messages(&alice(), session.id, 10, None)
        .await
        .unwrap();
    assert!(page.items.is_empty() && !page.has_more);
    assert!(db
        .repo
        .recent_messages(&alice(), session.id, None, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn recent_messages_are_the_newest_returned_oldest_first(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let m = seven_messages(&db, session.id).await;
    let other = stored_session(&*db.repo).await;
    db.repo
        .append_messages(&alice(), &[user_message(other.id, "elsewhere")])
        .await
        .unwrap();

    assert_eq!(
        db.repo
            .recent_messages(&alice(), session.id, None, 3)
            .await
            .unwrap(),
        m[4..]
    );
    assert_eq!(
        db.repo
            .recent_messages(&alice(), session.id, None, 7)
            .await
            .unwrap(),
        m
    );
    assert_eq!(
        db.repo
            .recent_messages(&alice(), session.id, None, 100)
            .await
            .unwrap(),
        m
    );
    assert!(db
        .repo
        .recent_messages(&alice(), session.id, None, 0)
        .await
        .unwrap()
        .is_empty());
}

async fn updating_a_reply_replaces_its_mutable_fields(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let question = user_message(session.id, "hi");
    let mut reply = reply_to(&question, streaming_reply(session.id));
    db.repo
        .append_messages(&alice(), &[question.clone(), reply.clone()])
        .await
        .unwrap();

    reply.content = "Hello there".to_owned();
    reply.finish_reason = Some("stop".to_owned());
    reply.usage = Some(Usage {
        prompt_tokens: 10,
        completion_tokens: 2,
    });
    reply.tool_calls = vec![ToolCall {
        id: "c".to_owned(),
        name: "clock".to_owned(),
        arguments: "{}".to_owned(),
        result: Some("\"noon\"".to_owned()),
        error: None,
    }];
    // Progress: still streaming, with every field set.
    db.repo.update_message(&alice(), &reply).await.unwrap();
    assert_eq!(
        all_messages(&*db.repo, session.id, 10).await,
        [question.clone(), reply.clone()]
    );

    // Clearing fields must clear them in the store too.
    reply.finish_reason = None;
    reply.usage = None;
    reply.tool_calls.clear();
    reply.finish(
        MessageStatus::Failed,
        Some(colloquy_domain::MessageError {
            code: ErrorCode::Internal,
            message: "boom".to_owned(),
        }),
    );
    db.repo.update_message(&alice(), &reply).await.unwrap();
    // The same final write made again (its answer was lost) still matches:
    // its end time is its own.
    reply.error = None;
    reply.status = MessageStatus::Cancelled;
    db.repo.update_message(&alice(), &reply).await.unwrap();
    assert_eq!(
        all_messages(&*db.repo, session.id, 10).await,
        [question.clone(), reply.clone()]
    );

    // Another end (a sweeper's, say) never overwrites the stored one.
    let mut other_end = reply.clone();
    other_end.content = "rewritten".to_owned();
    other_end.completed_at = Some(Timestamp::from_micros(
        reply.completed_at.unwrap().as_micros() + 1,
    ));
    let error = db
        .repo
        .update_message(&alice(), &other_end)
        .await
        .unwrap_err();
    assert!(matches!(error, RepoError::NotFound), "{error:?}");
    assert_eq!(
        all_messages(&*db.repo, session.id, 10).await,
        [question, reply]
    );
    assert_eq!(
        db.repo
            .get_session(&alice(), session.id)
            .await
            .unwrap()
            .message_count,
        2
    );
}

async fn an_update_cannot_move_a_message_or_change_its_origin(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let reply = streaming_reply(session.id);
    db.repo
        .append_messages(&alice(), std::slice::from_ref(&reply))
        .await
        .unwrap();

    let mut changed = reply.clone();
    changed.model = Some("another-model".to_owned());
    changed.created_at = Timestamp::from_micros(1);
    changed.content = "text".to_owned();
    db.repo.update_message(&alice(), &changed).await.unwrap();

    let stored = &db
        .repo
        .list_messages(&alice(), session.id, 1, None)
        .await
        .unwrap()
        .items[0];
    assert_eq!(stored.content, "text");
    assert_eq!(stored.model, reply.model, "the model that wrote it stays");
    assert_eq!(stored.created_at, reply.created_at);
}

async fn updating_a_missing_message_is_not_found(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let never_appended = streaming_reply(session.id);
    let error = db
        .repo
        .update_message(&alice(), &never_appended)
        .await
        .unwrap_err();
    assert!(matches!(error, RepoError::NotFound), "{error:?}");

    let reply = streaming_reply(session.id);
    db.repo
        .append_messages(&alice(), std::slice::from_ref(&reply))
        .await
        .unwrap();
    let mut claimed_elsewhere = reply.clone();
    claimed_elsewhere.session_id = SessionId::new();
    let error = db
        .repo
        .update_message(&alice(), &claimed_elsewhere)
        .await
        .unwrap_err();
    assert!(
        matches!(error, RepoError::NotFound),
        "a message is found in its own session only: {error:?}"
    );

    db.repo.delete_session(&alice(), session.id).await.unwrap();
    let error = db.repo.update_message(&alice(), &reply).await.unwrap_err();
    assert!(matches!(error, RepoError::NotFound), "{error:?}");
}

async fn interrupting_stops_every_streaming_reply_and_nothing_else(backend: Backend) {
    let db = TestDb::new(backend).await;
    let one = stored_session(&*db.repo).await;
    let two = stored_session(&*db.repo).await;
    let question = user_message(one.id, "q");
    let mut streaming_one = streaming_reply(one.id);
    streaming_one.content = "half an ans".to_owned();
    let streaming_two = streaming_reply(two.id);
    let mut cancelled = streaming_reply(two.id);
    cancelled.finish(MessageStatus::Cancelled, None);
    let done = finished_reply(two.id);
    db.repo
        .append_messages(&alice(), &[question.clone(), streaming_one.clone()])
        .await
        .unwrap();
    db.repo
        .append_messages(
            &alice(),
            &[streaming_two.clone(), cancelled.clone(), done.clone()],
        )
        .await
        .unwrap();

    let before = micros_now();
    assert_eq!(db.repo.interrupt_streaming().await.unwrap(), 2);

    let stopped_one = &all_messages(&*db.repo, one.id, 10).await[1];
    let in_two = all_messages(&*db.repo, two.id, 10).await;
    for (stopped, original) in [(stopped_one, &streaming_one), (&in_two[0], &streaming_two)] {
        assert_eq!(stopped.status, MessageStatus::Interrupted);
        assert_eq!(stopped.content, original.content, "the text so far is kept");
        let error = stopped
            .error
            .as_ref()
            .expect("an interrupted reply says why");
        assert_eq!(error.code, ErrorCode::Interrupted);
        assert!(
            error.message.contains("server stopped"),
            "{}",
            error.message
        );
        assert!(stopped.completed_at.unwrap().as_micros() >= before);
    }
    assert_eq!(in_two[1..], [cancelled, done]);
    assert_eq!(all_messages(&*db.repo, one.id, 10).await[0], question);

    assert_eq!(
        db.repo.interrupt_streaming().await.unwrap(),
        0,
        "nothing is left streaming"
    );
}

/// A turn's replies still streaming from its first on are stopped; one that
/// ended first keeps its end, and messages before the turn are left alone.
async fn interrupting_a_turn_stops_only_its_replies_still_streaming(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let earlier_question = user_message(session.id, "first question");
    // An earlier turn's reply left streaming is not this turn's to stop.
    let earlier = streaming_reply(session.id);
    let question = user_message(session.id, "second question");
    let mut opening = streaming_reply(session.id);
    opening.content = "half an ans".to_owned();
    let done = finished_reply(session.id);
    let mut closing = streaming_reply(session.id);
    closing.speaker = Some(crate::support::new_assistant(alice(), "Critic").speaker());
    closing.content = "and a rebu".to_owned();
    db.repo
        .append_messages(
            &alice(),
            &[
                earlier_question.clone(),
                earlier.clone(),
                question.clone(),
                opening.clone(),
                done.clone(),
                closing.clone(),
            ],
        )
        .await
        .unwrap();

    let before = micros_now();
    let ends = db
        .repo
        .interrupt_turn(session.id, opening.id)
        .await
        .unwrap();
    let summary: Vec<_> = ends
        .iter()
        .map(|end| (end.message.id, end.message.status, end.changed))
        .collect();
    assert_eq!(
        summary,
        [
            (opening.id, MessageStatus::Interrupted, true),
            (done.id, MessageStatus::Failed, false),
            (closing.id, MessageStatus::Interrupted, true),
        ],
        "the turn's replies, oldest first"
    );
    for (end, original) in [(&ends[0], &opening), (&ends[2], &closing)] {
        assert_eq!(
            end.message.content, original.content,
            "the text so far is kept"
        );
        assert_eq!(end.message.speaker, original.speaker, "and who wrote it");
        assert_eq!(
            end.message.error.as_ref().map(|error| error.code),
            Some(ErrorCode::Interrupted)
        );
        assert!(end.message.completed_at.unwrap().as_micros() >= before);
    }
    assert_eq!(ends[1].message, done, "an end stored before stays");
    let stored = all_messages(&*db.repo, session.id, 10).await;
    assert_eq!(
        stored[..3],
        [earlier_question, earlier, question],
        "nothing before the turn changes"
    );
    assert_eq!(
        stored[3..],
        ends.iter()
            .map(|end| end.message.clone())
            .collect::<Vec<_>>(),
        "what it returns is what is stored"
    );

    let again = db
        .repo
        .interrupt_turn(session.id, opening.id)
        .await
        .unwrap();
    assert!(
        again.iter().all(|end| !end.changed),
        "the first end stored wins"
    );
    assert_eq!(
        again.into_iter().map(|end| end.message).collect::<Vec<_>>(),
        stored[3..]
    );
    let from_the_last = db
        .repo
        .interrupt_turn(session.id, closing.id)
        .await
        .unwrap();
    assert_eq!(from_the_last.len(), 1, "from `first` on only");
}

async fn interrupting_a_turn_that_is_gone_is_not_found(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let other_session = stored_session(&*db.repo).await;
    let question = user_message(session.id, "q");
    let reply = streaming_reply(session.id);
    db.repo
        .append_messages(&alice(), &[question.clone(), reply.clone()])
        .await
        .unwrap();
    let cases = [
        (session.id, MessageId::new(), "an unknown first reply"),
        (other_session.id, reply.id, "a reply of another session"),
        (SessionId::new(), reply.id, "an unknown session"),
        (session.id, question.id, "a user message begins no turn"),
    ];
    for (in_session, first, case) in cases {
        let error = db.repo.interrupt_turn(in_session, first).await.unwrap_err();
        assert!(matches!(error, RepoError::NotFound), "{case}: {error:?}");
    }
    assert_eq!(
        all_messages(&*db.repo, session.id, 10).await,
        [question, reply.clone()],
        "a turn not found changes nothing"
    );

    db.repo.delete_session(&alice(), session.id).await.unwrap();
    let error = db
        .repo
        .interrupt_turn(session.id, reply.id)
        .await
        .unwrap_err();
    assert!(matches!(error, RepoError::NotFound), "{error:?}");
}

async fn streaming_replies_are_listed_oldest_first_up_to_a_time(backend: Backend) {
    let db = TestDb::new(backend).await;
    let one = stored_session(&*db.repo).await;
    let two = stored_session(&*db.repo).await;
    let mut oldest = streaming_reply(two.id);
    oldest.created_at = Timestamp::from_micros(1_000);
    let mut older = streaming_reply(one.id);
    older.created_at = Timestamp::from_micros(2_000);
    let mut young = streaming_reply(one.id);
    young.created_at = Timestamp::from_micros(9_000);
    let mut done = finished_reply(one.id);
    done.created_at = Timestamp::from_micros(500);
    db.repo
        .append_messages(&alice(), &[older.clone(), young.clone(), done])
        .await
        .unwrap();
    db.repo
        .append_messages(&alice(), &[oldest.clone()])
        .await
        .unwrap();

    let before = Timestamp::from_micros(5_000);
    assert_eq!(
        db.repo.streaming_replies(before, 10).await.unwrap(),
        [(two.id, oldest.id), (one.id, older.id)]
    );
    assert_eq!(
        db.repo.streaming_replies(before, 1).await.unwrap(),
        [(two.id, oldest.id)]
    );
    db.repo.interrupt_turn(two.id, oldest.id).await.unwrap();
    assert_eq!(
        db.repo
            .streaming_replies(Timestamp::from_micros(10_000), 10)
            .await
            .unwrap(),
        [(one.id, older.id), (one.id, young.id)]
    );
}

/// PostgreSQL's text cannot hold U+0000; both backends store U+FFFD in its
/// place, in every free-text field, rather than refuse the message.
async fn a_nul_character_is_stored_as_the_replacement_character(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut session = new_session();
    session.system_prompt = Some(colloquy_domain::SystemPrompt::parse("be\0brief").unwrap());
    db.repo.create_session(&session).await.unwrap();
    let question = user_message(session.id, "a NUL \0 here");
    let mut reply = finished_reply(session.id);
    reply.content = "\0".to_owned();
    reply.model = Some("odd\0model".to_owned());
    reply.finish_reason = Some("stop\0".to_owned());
    reply.error.as_mut().unwrap().message = "gone\0".to_owned();
    db.repo
        .append_messages(&alice(), &[question, reply.clone()])
        .await
        .unwrap();
    let stored = all_messages(&*db.repo, session.id, 10).await;
    assert_eq!(stored[0].content, "a NUL \u{FFFD} here");
    assert_eq!(stored[1].content, "\u{FFFD}");
    assert_eq!(stored[1].model.as_deref(), Some("odd\u{FFFD}model"));
    assert_eq!(stored[1].finish_reason.as_deref(), Some("stop\u{FFFD}"));
    assert_eq!(stored[1].error.as_ref().unwrap().message, "gone\u{FFFD}");

    reply.content = "still \0 streaming".to_owned();
    db.repo.update_message(&alice(), &reply).await.unwrap();
    assert_eq!(
        all_messages(&*db.repo, session.id, 10).await[1].content,
        "still \u{FFFD} streaming"
    );
    let read = db.repo.get_session(&alice(), session.id).await.unwrap();
    assert_eq!(
        read.system_prompt
            .as_ref()
            .map(colloquy_domain::SystemPrompt::as_str),
        Some("be\u{FFFD}brief")
    );
}

on_both_backends! {
    a_nul_character_is_stored_as_the_replacement_character,
    appended_messages_read_back_whole,
    appending_bumps_the_count_and_the_update_time,
    updated_at_never_moves_backwards,
    appending_to_an_unknown_session_is_not_found_and_stores_nothing,
    a_failing_append_stores_none_of_its_messages,
    an_append_mixing_sessions_is_refused_whole,
    appending_nothing_changes_nothing,
    messages_list_oldest_first_in_pages,
    message_has_more_is_exact_at_the_page_boundary,
    the_message_cursor_need_not_exist,
    a_session_lists_only_its_own_messages,
    listing_an_unknown_session_is_not_found,
    an_empty_session_lists_nothing,
    recent_messages_are_the_newest_returned_oldest_first,
    updating_a_reply_replaces_its_mutable_fields,
    an_update_cannot_move_a_message_or_change_its_origin,
    updating_a_missing_message_is_not_found,
    interrupting_stops_every_streaming_reply_and_nothing_else,
    interrupting_a_turn_stops_only_its_replies_still_streaming,
    interrupting_a_turn_that_is_gone_is_not_found,
    streaming_replies_are_listed_oldest_first_up_to_a_time,
}
