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

/// A session's newest `limit` messages, newest first.
pub(crate) fn newest_messages(session: String, limit: i64) -> MessageQuery {
    messages::table
        .select(MessageRow::as_select())
        .filter(messages::session_id.eq(session))
        .order(messages::id.desc())
        .limit(limit)
        .into_boxed()
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
        let database = TestDatabase::create().await;
        crate::migrate_postgres(database.url()).await.unwrap();
        let client = database.client().await;
        client
            .batch_execute(&format!(
                "SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off; \
                 PREPARE measured AS {sql}"
            ))
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
        let newest = plan(&sql_of(&newest_messages("s".into(), 50)), "'s', 50").await;
        assert_reads_in_order(&newest, "Index Scan Backward using messages_session_id_id");
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
}
