//! Raw statements that stay prepared: [`cached_query`], for SQL whose text
//! is a constant of the program.
//!
//! `diesel::sql_query` marks its statement unsafe to cache, since its text
//! may be built at run time and a cache keyed by such texts could grow
//! without bound. So every call of one prepares it again: SQLite parses
//! and plans the SQL each time (`sqlite3Prepare` was about 12 % of the
//! server's CPU in a profile, for the walks and the chains of every turn),
//! and PostgreSQL takes a round trip to parse it before the one that runs
//! it. A [`CachedQuery`] takes only a `&'static str`, so the texts it can
//! bring are the program's own, a fixed set: Diesel keeps each one's
//! prepared statement in the connection's cache, keyed by the text and the
//! types of its binds, and runs it from there the next time.
//!
//! What a call still pays is building the key's text (a copy of the
//! constant) and hashing it, far less than parsing it. On PostgreSQL a
//! cached statement is a named prepared statement of its connection, as
//! every statement of Diesel's query builder already is; after five runs
//! the server may switch it to a generic plan, made for no particular
//! parameters, which `postgres/queries.rs` checks for the statements whose
//! plans matter.

use std::marker::PhantomData;

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};
use diesel::{QueryResult, RunQueryDsl};

/// `sql` as a statement that stays prepared on its connection; bind its
/// parameters with [`CachedQuery::bind`], in the order the text numbers
/// them, as with `diesel::sql_query`. Load rows with a `QueryableByName`
/// type, or execute it, the same way too.
pub(crate) fn cached_query(sql: &'static str) -> CachedQuery {
    CachedQuery { sql }
}

/// A statement whose text is a constant; see [`cached_query`].
#[derive(Debug, Clone, Copy)]
#[must_use = "a query runs only when it is loaded or executed"]
pub(crate) struct CachedQuery {
    sql: &'static str,
}

impl CachedQuery {
    /// The statement with `value` bound, as SQL type `ST`, to its first
    /// parameter.
    pub(crate) fn bind<ST, V>(self, value: V) -> CachedBind<Self, V, ST> {
        CachedBind::new(self, value)
    }
}

/// A [`CachedQuery`] with values bound to its parameters, one more than in
/// `Q`: this one's, of SQL type `ST`.
#[derive(Debug, Clone, Copy)]
#[must_use = "a query runs only when it is loaded or executed"]
pub(crate) struct CachedBind<Q, V, ST> {
    query: Q,
    value: V,
    sql_type: PhantomData<ST>,
}

impl<Q, V, ST> CachedBind<Q, V, ST> {
    fn new(query: Q, value: V) -> Self {
        Self {
            query,
            value,
            sql_type: PhantomData,
        }
    }

    /// The statement with `value` bound, as SQL type `ST2`, to its next
    /// parameter.
    pub(crate) fn bind<ST2, V2>(self, value: V2) -> CachedBind<Self, V2, ST2> {
        CachedBind::new(self, value)
    }
}

impl<DB: Backend> QueryFragment<DB> for CachedQuery {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        // Unlike `SqlQuery`, never `out.unsafe_to_cache_prepared()`: that
        // is the point of this type.
        out.push_sql(self.sql);
        Ok(())
    }
}

impl<DB, Q, V, ST> QueryFragment<DB> for CachedBind<Q, V, ST>
where
    DB: Backend + HasSqlType<ST>,
    Q: QueryFragment<DB>,
    V: ToSql<ST, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.query.walk_ast(out.reborrow())?;
        // The text spells its parameters already: this binds the value
        // without writing a placeholder, as `sql_query`'s binds do.
        out.push_bind_param_value_only(&self.value)
    }
}

// No type of its own identifies the statement (every constant has the same
// type), so Diesel keys its cache by the text and the types of the binds.
impl QueryId for CachedQuery {
    type QueryId = ();

    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q, V, ST> QueryId for CachedBind<Q, V, ST> {
    type QueryId = ();

    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for CachedQuery {
    type SqlType = Untyped;
}

impl<Q, V, ST> Query for CachedBind<Q, V, ST> {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for CachedQuery {}

impl<Q, V, ST, Conn> RunQueryDsl<Conn> for CachedBind<Q, V, ST> {}

/// What a connection prepares into its statement cache, for the tests that
/// check that a statement stays prepared.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::{Arc, Mutex};

    use diesel::connection::{Instrumentation, InstrumentationEvent};

    /// The texts of the statements a connection put in its cache, one entry
    /// each time it prepared one for it. Diesel reports nothing of the
    /// statements it prepares without caching (every `sql_query`'s), so a
    /// text that stays prepared is here exactly once, however often it ran.
    #[derive(Debug, Clone, Default)]
    pub(crate) struct CacheLog(Arc<Mutex<Vec<String>>>);

    impl CacheLog {
        /// The instrumentation to give the connection, which writes here.
        pub(crate) fn recorder(&self) -> impl Instrumentation {
            let log = Arc::clone(&self.0);
            move |event: InstrumentationEvent<'_>| {
                if let InstrumentationEvent::CacheQuery { sql, .. } = event {
                    log.lock().unwrap().push(sql.to_owned());
                }
            }
        }

        /// How many times `sql` was prepared into the cache.
        pub(crate) fn times_prepared(&self, sql: &str) -> usize {
            self.0
                .lock()
                .unwrap()
                .iter()
                .filter(|cached| *cached == sql)
                .count()
        }
    }
}
