//! Diesel's view of the tables in `migrations/sqlite` and `migrations/postgres`,
//! which hold the same columns in the same types. Written by hand (the
//! migrations are the source of truth); the integration tests run every
//! query against both migrated schemas, so a drift between them fails there.
//!
//! What full-text search keeps is each backend's own and not here: SQLite's
//! FTS5 table `messages_search`, PostgreSQL's generated column
//! `messages.search_vector`. Only raw SQL (`sqlite/search.rs`,
//! `postgres/search.rs`) reads them.

diesel::table! {
    sessions (id) {
        id -> Text,
        owner -> Text,
        title -> Nullable<Text>,
        system_prompt -> Nullable<Text>,
        model -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        message_count -> BigInt,
        assistant_id -> Nullable<Text>,
        head_message_id -> Nullable<Text>,
    }
}

diesel::table! {
    messages (id) {
        id -> Text,
        session_id -> Text,
        role -> Text,
        content -> Text,
        status -> Text,
        model -> Nullable<Text>,
        finish_reason -> Nullable<Text>,
        prompt_tokens -> Nullable<BigInt>,
        completion_tokens -> Nullable<BigInt>,
        error_code -> Nullable<Text>,
        error_message -> Nullable<Text>,
        tool_calls -> Nullable<Text>,
        created_at -> BigInt,
        completed_at -> Nullable<BigInt>,
        assistant_id -> Nullable<Text>,
        assistant_name -> Nullable<Text>,
        parent_id -> Nullable<Text>,
        /// 0 for a root, its parent's + 1 otherwise.
        depth -> BigInt,
        /// The conversation chain up to this message (`ConversationChain`);
        /// NULL until its text is final. See `chains.rs`.
        chain -> Nullable<BigInt>,
    }
}

diesel::table! {
    assistants (id) {
        id -> Text,
        owner -> Text,
        name -> Text,
        instructions -> Nullable<Text>,
        model -> Text,
        /// A JSON array of tool names.
        tools -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        principal -> Text,
        label -> Nullable<Text>,
        key_hash -> Binary,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    daily_usage (principal, day) {
        principal -> Text,
        /// Days since 1970-01-01 UTC.
        day -> BigInt,
        prompt_tokens -> BigInt,
        completion_tokens -> BigInt,
    }
}

// As `diesel print-schema` writes them for the foreign key; needed for a
// subquery on `sessions` inside a statement on `messages`.
diesel::joinable!(messages -> sessions (session_id));
diesel::allow_tables_to_appear_in_same_query!(messages, sessions);
