//! The read queries whose speed matters, as on SQLite (`sqlite/queries.rs`)
//! with the same filters and order, built for PostgreSQL. The integration
//! tests ask the server how it plans exactly these statements.

use colloquy_domain::Role;
use diesel::dsl::{AsSelect, SqlTypeOf};
use diesel::pg::Pg;
use diesel::prelude::*;

use crate::rows::{AssistantRow, MessageRow, SessionRow};
use crate::schema::{assistants, messages, sessions};

pub(crate) type SessionQuery =
    sessions::BoxedQuery<'static, Pg, SqlTypeOf<AsSelect<SessionRow, Pg>>>;
pub(crate) type MessageQuery =
    messages::BoxedQuery<'static, Pg, SqlTypeOf<AsSelect<MessageRow, Pg>>>;
pub(crate) type AssistantQuery =
    assistants::BoxedQuery<'static, Pg, SqlTypeOf<AsSelect<AssistantRow, Pg>>>;

/// `owner`'s sessions newest first, those older than `before` when given.
pub(crate) fn session_page(owner: String, before: Option<String>, fetch: i64) -> SessionQuery {
    let mut query = sessions::table
        .select(SessionRow::as_select())
        .filter(sessions::owner.eq(owner))
        .order(sessions::id.desc())
        .limit(fetch)
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(sessions::id.lt(before));
    }
    query
}

/// `owner`'s assistants newest first, those older than `before` when given.
pub(crate) fn assistant_page(owner: String, before: Option<String>, fetch: i64) -> AssistantQuery {
    let mut query = assistants::table
        .select(AssistantRow::as_select())
        .filter(assistants::owner.eq(owner))
        .order(assistants::id.desc())
        .limit(fetch)
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(assistants::id.lt(before));
    }
    query
}

/// The assistant messages of a session from `first` on, oldest first: the
/// turn `first` began, since a session runs one turn at a time.
pub(crate) fn turn_replies(session: String, first: String) -> MessageQuery {
    messages::table
        .select(MessageRow::as_select())
        .filter(messages::session_id.eq(session))
        .filter(messages::id.ge(first))
        .filter(messages::role.eq(Role::Assistant.as_str()))
        .order(messages::id.asc())
        .into_boxed()
}

/// A session's messages oldest first, those newer than `after` when given.
pub(crate) fn message_page(session: String, after: Option<String>, fetch: i64) -> MessageQuery {
    let mut query = messages::table
        .select(MessageRow::as_select())
        .filter(messages::session_id.eq(session))
        .order(messages::id.asc())
        .limit(fetch)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(messages::id.gt(after));
    }
    query
}

/// Marks streaming replies interrupted. The status is a literal, as on
/// SQLite, so the planner can prove the partial index `messages_streaming`
/// applies without knowing a parameter's value.
pub(crate) const INTERRUPT_STREAMING: &str = "\
    UPDATE messages \
    SET status = 'interrupted', error_code = $1, error_message = $2, completed_at = $3 \
    WHERE status = 'streaming'";

/// The oldest replies still streaming that were created before a time; the
/// literal status lets the partial index answer, as above, so the sweeper's
/// look costs the few streaming rows, not the whole table.
pub(crate) const STREAMING_REPLIES: &str = "\
    SELECT session_id, id FROM messages \
    WHERE status = 'streaming' AND created_at < $1 \
    ORDER BY created_at LIMIT $2";

/// The session's head and length after an append, and its update time,
/// never moved backwards (should the clock step back). A constant text,
/// so it stays prepared (see `crate::turn_writes`, the turn's other writes).
pub(crate) const SET_HEAD: &str = "\
    UPDATE sessions SET head_message_id = $1, message_count = $2, \
    updated_at = GREATEST(updated_at, $3) WHERE id = $4 AND owner = $5";

#[cfg(test)]
mod tests {
    use diesel::debug_query;

    use super::*;
    use crate::testing::TestDatabase;

    /// The server's plan for `sql` run with `parameters`, one line per step.
    /// Every other way is made as costly as the planner allows: on the empty
    /// tables of a test, a scan of the table or a bitmap of the index and a
    /// sort would win, and what is asked is whether the index alone can
    /// serve the query, in its order.
    async fn plan(sql: &str, parameters: &str) -> String {
        plan_with(
            "SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off;",
            sql,
            parameters,
        )
        .await
    }

    /// [`plan`], with `settings` instead of its own.
    async fn plan_with(settings: &str, sql: &str, parameters: &str) -> String {
        let database = TestDatabase::create().await;
        crate::migrate_postgres(database.url()).await.unwrap();
        let client = database.client().await;
        client
            .batch_execute(&format!("{settings} PREPARE measured AS {sql}"))
            .await
            .unwrap();
        client
            .query(&format!("EXPLAIN EXECUTE measured ({parameters})"), &[])
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn sql_of<Q: diesel::query_builder::QueryFragment<Pg>>(query: &Q) -> String {
        let text = debug_query::<Pg, _>(query).to_string();
        text.split(" -- binds:").next().unwrap().to_owned()
    }

    fn assert_reads_in_order(plan: &str, scan: &str) {
        assert!(plan.contains(scan), "expected `{scan}`:\n{plan}");
        assert!(!plan.contains("Sort"), "expected no sort step:\n{plan}");
    }

    #[tokio::test]
    async fn history_pages_are_index_range_scans() {
        let first = plan(&sql_of(&message_page("s".into(), None, 51)), "'s', 51").await;
        assert_reads_in_order(&first, "Index Scan using messages_session_id_id");
        let next = plan(
            &sql_of(&message_page("s".into(), Some("m".into()), 51)),
            "'s', 'm', 51",
        )
        .await;
        assert_reads_in_order(&next, "Index Scan using messages_session_id_id");
        assert!(
            next.contains("(id > 'm'"),
            "the cursor bounds the range:\n{next}"
        );
    }

    #[tokio::test]
    async fn a_principals_listing_is_a_range_scan_of_the_owner_index() {
        let first = plan(
            &sql_of(&session_page("alice".into(), None, 21)),
            "'alice', 21",
        )
        .await;
        assert_reads_in_order(&first, "Index Scan Backward using sessions_owner_id");
        let next = plan(
            &sql_of(&session_page("alice".into(), Some("x".into()), 21)),
            "'alice', 'x', 21",
        )
        .await;
        assert_reads_in_order(&next, "Index Scan Backward using sessions_owner_id");
        assert!(
            next.contains("(id < 'x'"),
            "the cursor bounds the range:\n{next}"
        );
    }

    #[tokio::test]
    async fn a_principals_assistants_are_a_range_scan_of_their_owner_index() {
        let first = plan(
            &sql_of(&assistant_page("alice".into(), None, 21)),
            "'alice', 21",
        )
        .await;
        assert_reads_in_order(&first, "Index Scan Backward using assistants_owner_id");
        let next = plan(
            &sql_of(&assistant_page("alice".into(), Some("x".into()), 21)),
            "'alice', 'x', 21",
        )
        .await;
        assert_reads_in_order(&next, "Index Scan Backward using assistants_owner_id");
        assert!(
            next.contains("(id < 'x'"),
            "the cursor bounds the range:\n{next}"
        );
    }

    #[tokio::test]
    async fn a_turn_is_a_range_scan_of_its_sessions_messages() {
        let turn = plan(
            &sql_of(&turn_replies("s".into(), "m".into())),
            "'s', 'm', 'assistant'",
        )
        .await;
        assert_reads_in_order(&turn, "Index Scan using messages_session_id_id");
        assert!(
            turn.contains("(id >= 'm'"),
            "from its first reply on:\n{turn}"
        );
    }

    #[tokio::test]
    async fn interrupting_reads_only_the_partial_index() {
        let plan = plan(INTERRUPT_STREAMING, "'interrupted', 'stopped', 0").await;
        assert!(plan.contains("messages_streaming"), "{plan}");
    }

    #[tokio::test]
    async fn listing_streaming_replies_reads_only_the_partial_index() {
        let plan = plan(STREAMING_REPLIES, "0, 10").await;
        assert!(plan.contains("messages_streaming"), "{plan}");
    }

    /// Every index condition of a plan, one per line.
    fn index_conditions(plan: &str) -> Vec<&str> {
        plan.lines()
            .filter_map(|line| line.trim().strip_prefix("Index Cond: "))
            .collect()
    }

    /// The server's plans for `sql` run with `parameters`, on a database
    /// with enough messages (and statistics about them) for the planner to
    /// choose as it would in production, where an empty table is read
    /// whole: 50 sessions of 5 owners, each a branch of 400 messages (the
    /// message `…9000-{n}` is the `n / 50`-th of session `…8000-{n % 50 + 1}`),
    /// every thousandth of them holding the word "zanzibar".
    ///
    /// Two plans: the one made for these parameters, and the generic one,
    /// made for none. The statements stay prepared on their connection
    /// (`crate::statement`), and after five runs the server may keep the
    /// generic plan for the rest of the connection's life.
    async fn plan_on_history(sql: &str, parameters: &str) -> Vec<String> {
        let database = TestDatabase::create().await;
        crate::migrate_postgres(database.url()).await.unwrap();
        let client = database.client().await;
        client
            .batch_execute(
                "INSERT INTO sessions (id, owner, model, created_at, updated_at) \
                 SELECT format('00000000-0000-7000-8000-%s', lpad(n::text, 12, '0')), \
                        'owner' || (n % 5), 'm', 0, 0 \
                 FROM generate_series(1, 50) AS n; \
                 INSERT INTO messages (id, session_id, parent_id, depth, role, content, status, \
                                       created_at) \
                 SELECT format('00000000-0000-7000-9000-%s', lpad(n::text, 12, '0')), \
                        format('00000000-0000-7000-8000-%s', lpad((n % 50 + 1)::text, 12, '0')), \
                        CASE WHEN n >= 50 \
                            THEN format('00000000-0000-7000-9000-%s', lpad((n - 50)::text, 12, '0')) \
                        END, \
                        n / 50, 'user', \
                        'an ordinary message, number ' || n \
                            || CASE WHEN n % 1000 = 0 THEN ' zanzibar' ELSE '' END, \
                        'complete', 0 \
                 FROM generate_series(0, 19999) AS n;",
            )
            .await
            .unwrap();
        // Also moves what GIN queued on insert into the index proper, as
        // autovacuum does.
        client
            .batch_execute("VACUUM ANALYZE sessions")
            .await
            .unwrap();
        client
            .batch_execute("VACUUM ANALYZE messages")
            .await
            .unwrap();
        client
            .batch_execute(&format!("PREPARE measured AS {sql}"))
            .await
            .unwrap();
        let mut plans = Vec::new();
        for mode in ["force_custom_plan", "force_generic_plan"] {
            client
                .batch_execute(&format!("SET plan_cache_mode = {mode}"))
                .await
                .unwrap();
            let plan = client
                .query(&format!("EXPLAIN EXECUTE measured ({parameters})"), &[])
                .await
                .unwrap()
                .iter()
                .map(|row| row.get::<_, String>(0))
                .collect::<Vec<_>>()
                .join("\n");
            plans.push(format!("{mode}:\n{plan}"));
        }
        plans
    }

    /// Each step of a walk up a branch, and the rows read back, are
    /// lookups of one message by its id: what a walk of `limit` steps
    /// costs does not depend on how long the session is.
    #[tokio::test]
    async fn walking_up_a_branch_looks_up_one_message_per_step() {
        let walks = plan_on_history(
            crate::tree::WALK_UP,
            "'00000000-0000-7000-9000-000000019999', '00000000-0000-7000-8000-000000000050', \
             10, 1000",
        )
        .await;
        for walk in walks {
            let conditions = index_conditions(&walk);
            assert_eq!(
                conditions.len(),
                3,
                "the anchor, each step, the rows:\n{walk}"
            );
            assert!(
                conditions
                    .iter()
                    .all(|condition| condition.contains("(id = ")),
                "every read is of one id, none a range of the session:\n{walk}"
            );
            assert!(!walk.contains("Seq Scan"), "{walk}");
        }
    }

    #[tokio::test]
    async fn the_newest_leaf_is_found_through_the_index_of_children() {
        let leaves = plan_on_history(
            crate::tree::NEWEST_LEAF,
            "'00000000-0000-7000-9000-000000019000', '00000000-0000-7000-8000-000000000001'",
        )
        .await;
        for leaf in leaves {
            let by_parent = index_conditions(&leaf)
                .into_iter()
                .filter(|condition| condition.contains("(parent_id = "))
                .count();
            assert_eq!(
                by_parent, 2,
                "each step looks its children up, and each leaf's absence of them:\n{leaf}"
            );
            assert_eq!(
                index_conditions(&leaf).len(),
                3,
                "the walk's start, its steps, the leaves' probes, and no other read of the table:\n{leaf}"
            );
            assert!(!leaf.contains("Seq Scan"), "{leaf}");
        }
    }

    /// A search's second pass asks the GIN index for every message holding
    /// the words; its first reads the newest messages along the primary key,
    /// backwards, and stops after a fixed number.
    #[tokio::test]
    async fn a_search_reads_the_newest_messages_then_the_full_text_index() {
        use crate::postgres::search::{statement, Pass};
        let cursor = "'00000000-0000-7000-9000-000000015000'";
        for after in [false, true] {
            let with_cursor = |parameters: &str| {
                if after {
                    format!("{parameters}, {cursor}")
                } else {
                    parameters.to_owned()
                }
            };
            let alls = plan_on_history(
                statement(Pass::All, after),
                &with_cursor("'Zanzibar', 'StartSel=<', 'owner1', 21"),
            )
            .await;
            for all in alls {
                assert!(
                    all.contains("Bitmap Index Scan on messages_search"),
                    "{all}"
                );
                assert!(!all.contains("Seq Scan on messages"), "{all}");
            }
            let newests = plan_on_history(
                statement(Pass::Newest, after),
                &with_cursor("'Zanzibar', 'StartSel=<', 'owner1', 21, 1000"),
            )
            .await;
            for newest in newests {
                assert!(
                    newest.contains("Index Scan Backward using messages_pkey on messages"),
                    "{newest}"
                );
                assert!(!newest.contains("Bitmap"), "{newest}");
                if after {
                    assert!(newest.contains("Index Cond: (id < "), "{newest}");
                }
            }
        }
    }
}
