//! The read queries whose speed matters, built in one place so that the
//! tests below can ask SQLite how it runs exactly these statements.

use colloquy_domain::Role;
use diesel::dsl::{AsSelect, SqlTypeOf};
use diesel::prelude::*;
use diesel::sqlite::Sqlite;

use crate::rows::{AssistantRow, MessageRow, SessionRow};
use crate::schema::{assistants, messages, sessions};

pub(crate) type SessionQuery =
    sessions::BoxedQuery<'static, Sqlite, SqlTypeOf<AsSelect<SessionRow, Sqlite>>>;
pub(crate) type MessageQuery =
    messages::BoxedQuery<'static, Sqlite, SqlTypeOf<AsSelect<MessageRow, Sqlite>>>;
pub(crate) type AssistantQuery =
    assistants::BoxedQuery<'static, Sqlite, SqlTypeOf<AsSelect<AssistantRow, Sqlite>>>;

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

/// Marks streaming replies interrupted. Raw SQL because the status must be a
/// literal: SQLite only picks the partial index `messages_streaming` when the
/// query's WHERE visibly implies the index's, and a bound parameter does not.
pub(crate) const INTERRUPT_STREAMING: &str = "\
    UPDATE messages \
    SET status = 'interrupted', error_code = ?, error_message = ?, completed_at = ? \
    WHERE status = 'streaming'";

/// The oldest replies still streaming that were created before a time; the
/// literal status lets the partial index answer, as above, so the sweeper's
/// look costs the few streaming rows, not the whole table.
pub(crate) const STREAMING_REPLIES: &str = "\
    SELECT session_id, id FROM messages \
    WHERE status = 'streaming' AND created_at < ? \
    ORDER BY created_at LIMIT ?";

// A turn's other writes are in `crate::turn_writes`, shared with
// PostgreSQL; this one differs (`MAX` is `GREATEST` there).

/// The session's head and length after an append, and its update time,
/// never moved backwards (should the clock step back).
pub(crate) const SET_HEAD: &str = "\
    UPDATE sessions SET head_message_id = ?, message_count = ?, updated_at = MAX(updated_at, ?) \
    WHERE id = ? AND owner = ?";

#[cfg(test)]
mod tests {
    use diesel::debug_query;
    use diesel::sql_types::Text;

    use super::*;
    use crate::sqlite::location::Location;
    use crate::sqlite::{migrations, pool};

    #[derive(QueryableByName)]
    struct PlanStep {
        #[diesel(sql_type = Text)]
        detail: String,
    }

    fn migrated() -> SqliteConnection {
        let mut connection = pool::establish(&Location::Memory).unwrap();
        migrations::run_pending(&mut connection).unwrap();
        connection
    }

    /// SQLite's plan for `sql`, one line per step. Parameters left unbound
    /// read as NULL, which does not change the plan of these queries.
    fn plan(connection: &mut SqliteConnection, sql: &str) -> String {
        let steps: Vec<PlanStep> = diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
            .load(connection)
            .unwrap();
        steps
            .into_iter()
            .map(|step| step.detail)
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn sql_of<Q: diesel::query_builder::QueryFragment<Sqlite>>(query: &Q) -> String {
        let text = debug_query::<Sqlite, _>(query).to_string();
        text.split(" -- binds:").next().unwrap().to_owned()
    }

    fn assert_searches(plan: &str, index: &str) {
        assert!(
            plan.contains(&format!("USING INDEX {index}")),
            "expected a search on {index}:\n{plan}"
        );
        assert!(
            !plan.contains("TEMP B-TREE"),
            "expected no sort step:\n{plan}"
        );
    }

    #[test]
    fn history_pages_are_index_range_scans() {
        let mut connection = migrated();
        let first = plan(
            &mut connection,
            &sql_of(&message_page("s".into(), None, 51)),
        );
        assert_searches(&first, "messages_session_id_id");
        let next = plan(
            &mut connection,
            &sql_of(&message_page("s".into(), Some("m".into()), 51)),
        );
        assert_searches(&next, "messages_session_id_id");
        assert!(
            next.contains("id>?"),
            "the cursor bounds the range:\n{next}"
        );
    }

    /// Each step of a walk up a branch, and the rows read back, are
    /// lookups of one message by its primary key: what a walk of `limit`
    /// steps costs does not depend on how long the session is.
    #[test]
    fn walking_up_a_branch_looks_up_one_message_per_step() {
        let mut connection = migrated();
        let walk = plan(&mut connection, crate::tree::WALK_UP);
        let reads: Vec<&str> = walk
            .lines()
            .filter(|step| step.contains(" messages"))
            .collect();
        assert_eq!(reads.len(), 3, "the anchor, each step, the rows:\n{walk}");
        for read in reads {
            assert!(
                read.starts_with("SEARCH messages USING INDEX sqlite_autoindex_messages_1 (id=?)"),
                "a lookup by id, not a scan of the session:\n{walk}"
            );
        }
        assert!(!walk.contains("SCAN messages"), "{walk}");
    }

    #[test]
    fn the_newest_leaf_is_found_through_the_index_of_children() {
        let mut connection = migrated();
        let leaf = plan(&mut connection, crate::tree::NEWEST_LEAF);
        let reads: Vec<&str> = leaf
            .lines()
            .filter(|step| step.contains(" messages"))
            .collect();
        assert_eq!(
            reads,
            [
                "SEARCH messages USING INDEX sqlite_autoindex_messages_1 (id=?)",
                "SEARCH messages USING INDEX messages_session_parent_id (session_id=? AND parent_id=?)",
                "SEARCH child USING COVERING INDEX messages_session_parent_id (session_id=? AND parent_id=?)",
            ],
            "the walk's start, each step's children, then one probe per message for children of its own; nothing else of the table:\n{leaf}"
        );
    }

    /// A search reads the FTS5 index, newest row first as it is stored, and
    /// stops after a page: no sort of every match.
    #[test]
    fn a_search_reads_the_full_text_index_in_its_own_order() {
        let mut connection = migrated();
        let search = plan(&mut connection, crate::sqlite::search::SEARCH);
        assert!(
            search.contains("SCAN messages_search VIRTUAL TABLE INDEX"),
            "{search}"
        );
        assert!(
            search.contains("SEARCH messages USING INTEGER PRIMARY KEY (rowid=?)"),
            "{search}"
        );
        assert!(!search.contains("TEMP B-TREE"), "no sort step:\n{search}");
        let cursor = plan(&mut connection, crate::sqlite::search::CURSOR);
        assert!(
            cursor.contains("SEARCH messages USING") && cursor.contains("(id<?)"),
            "{cursor}"
        );
    }

    #[test]
    fn a_principals_listing_is_a_range_scan_of_the_owner_index() {
        let mut connection = migrated();
        let first = plan(
            &mut connection,
            &sql_of(&session_page("alice".into(), None, 21)),
        );
        assert_searches(&first, "sessions_owner_id");
        let next = plan(
            &mut connection,
            &sql_of(&session_page("alice".into(), Some("x".into()), 21)),
        );
        assert_searches(&next, "sessions_owner_id");
        assert!(
            next.contains("owner=? AND id<?"),
            "the cursor bounds the range:\n{next}"
        );
    }

    #[test]
    fn a_principals_assistants_are_a_range_scan_of_their_owner_index() {
        let mut connection = migrated();
        let first = plan(
            &mut connection,
            &sql_of(&assistant_page("alice".into(), None, 21)),
        );
        assert_searches(&first, "assistants_owner_id");
        let next = plan(
            &mut connection,
            &sql_of(&assistant_page("alice".into(), Some("x".into()), 21)),
        );
        assert_searches(&next, "assistants_owner_id");
        assert!(
            next.contains("owner=? AND id<?"),
            "the cursor bounds the range:\n{next}"
        );
    }

    #[test]
    fn a_turn_is_a_range_scan_of_its_sessions_messages() {
        let mut connection = migrated();
        let turn = plan(
            &mut connection,
            &sql_of(&turn_replies("s".into(), "m".into())),
        );
        assert_searches(&turn, "messages_session_id_id");
        assert!(turn.contains("id>?"), "from its first reply on:\n{turn}");
    }

    #[derive(QueryableByName)]
    struct CompileOption {
        #[diesel(sql_type = Text)]
        compile_options: String,
    }

    #[test]
    fn a_plan_never_depends_on_the_values_bound_to_it() {
        // `.cargo/config.toml` builds the bundled SQLite so: without it, a
        // bound `LIMIT ?` expires its statement at every new binding, and
        // each run of a cached statement is parsed and planned again.
        let mut connection = migrated();
        let options: Vec<CompileOption> =
            diesel::sql_query("SELECT compile_options FROM pragma_compile_options")
                .load(&mut connection)
                .unwrap();
        assert!(
            options
                .iter()
                .any(|option| option.compile_options == "ENABLE_QPSG"),
            "SQLite was built without SQLITE_ENABLE_QPSG"
        );
    }

    #[test]
    fn interrupting_reads_only_the_partial_index() {
        let mut connection = migrated();
        let plan = plan(&mut connection, INTERRUPT_STREAMING);
        assert!(plan.contains("messages_streaming"), "{plan}");
    }

    #[test]
    fn listing_streaming_replies_reads_only_the_partial_index() {
        let mut connection = migrated();
        let plan = plan(&mut connection, STREAMING_REPLIES);
        assert!(plan.contains("messages_streaming"), "{plan}");
    }
}
