//! `COLLOQUY_AUTH=keys`: API keys made with `colloquy keys create`.
//!
//! A key is `ck_` and 32 random bytes in base64url, shown once when it is
//! made. Only its SHA-256 is stored: the key is too random to guess, so a
//! slow password hash would buy nothing, and a lookup by hash is an index
//! search. Each request looks its key up afresh, so a revocation takes effect
//! at the next request on every replica.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use colloquy_domain::{ApiKeyId, Principal, Timestamp};
use colloquy_ports::{ApiKeyRecord, ApiKeyStore, AuthError, Authenticator, RepoError};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

/// What every colloquy API key starts with, so that one found in a log, a
/// repository or a chat is recognisable (and secret scanners can match it).
pub const KEY_PREFIX: &str = "ck_";

/// Random bytes in a key.
const SECRET_BYTES: usize = 32;

/// Characters of the base64url text (no padding) of [`SECRET_BYTES`] bytes.
const SECRET_CHARS: usize = SECRET_BYTES.div_ceil(3) * 4 - 1;

/// How often the keys' last uses are written to the store: a key used a
/// thousand times in a minute costs one write.
const FLUSH_EVERY: Duration = Duration::from_secs(60);

/// A key just made: its id, to list and revoke it by, and the key itself,
/// which exists nowhere else. Debug leaves the key out.
pub struct IssuedKey {
    pub id: ApiKeyId,
    pub key: String,
}

impl fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedKey")
            .field("id", &self.id)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// The [`Authenticator`] of `COLLOQUY_AUTH=keys`: a bearer is an API key in
/// the [`ApiKeyStore`], and the request acts for that key's principal.
///
/// When a key is used, the time is kept in memory and written with
/// [`ApiKeyStore::record_key_use`] by a background task, all keys in one
/// batch, once a minute. Call [`ApiKeys::flush`] at shutdown to write the
/// last ones; dropping an `ApiKeys` stops its task without writing.
pub struct ApiKeys {
    shared: Arc<Shared>,
    /// The task that flushes every minute; `None` when `new` ran outside a
    /// Tokio runtime, where only [`ApiKeys::flush`] writes.
    ticker: Option<JoinHandle<()>>,
}

/// What the authenticator and its background task share.
struct Shared {
    store: Arc<dyn ApiKeyStore>,
    /// Each key's latest use not written yet.
    unwritten: Mutex<HashMap<ApiKeyId, Timestamp>>,
}

impl ApiKeys {
    /// Checks keys against `store`. Inside a Tokio runtime, this starts the
    /// task that writes the keys' last uses every minute; it stops when the
    /// `ApiKeys` is dropped.
    #[must_use]
    pub fn new(store: Arc<dyn ApiKeyStore>) -> Self {
        let shared = Arc::new(Shared {
            store,
            unwritten: Mutex::new(HashMap::new()),
        });
        let ticker = tokio::runtime::Handle::try_current()
            .ok()
            .map(|runtime| runtime.spawn(flush_periodically(Arc::downgrade(&shared))));
        Self { shared, ticker }
    }

    /// Makes a new key for `principal` and stores its hash in `store`. The
    /// returned [`IssuedKey::key`] is the only copy of the key.
    ///
    /// # Errors
    /// The operating system has no random bytes to give, or the store fails
    /// (the [`RepoError`] is in the error's chain).
    pub async fn issue(
        store: &dyn ApiKeyStore,
        principal: Principal,
        label: Option<String>,
    ) -> anyhow::Result<IssuedKey> {
        let mut secret = [0_u8; SECRET_BYTES];
        getrandom::fill(&mut secret).map_err(|error| {
            anyhow::anyhow!("the operating system's random number generator failed: {error}")
        })?;
        let key = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
        let record = ApiKeyRecord {
            id: ApiKeyId::new(),
            principal,
            label,
            hash: hash(&key),
            created_at: Timestamp::now(),
            last_used_at: None,
            revoked_at: None,
        };
        store
            .create_api_key(&record)
            .await
            .context("storing the new API key")?;
        Ok(IssuedKey { id: record.id, key })
    }

    /// Writes the last use of every key used since the previous write, in
    /// one [`ApiKeyStore::record_key_use`] call; none when no key was used.
    ///
    /// # Errors
    /// The store's; the uses are kept and written by the next flush then.
    pub async fn flush(&self) -> Result<(), RepoError> {
        self.shared.flush().await
    }
}

impl Drop for ApiKeys {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
        }
    }
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeys")
            .field("store", &self.shared.store)
            .field("unwritten_uses", &self.shared.lock().len())
            .field("flushing_every", &self.ticker.as_ref().map(|_| FLUSH_EVERY))
            .finish()
    }
}

#[async_trait]
impl Authenticator for ApiKeys {
    async fn authenticate(&self, bearer: Option<String>) -> Result<Principal, AuthError> {
        let Some(key) = bearer else {
            return Err(AuthError::Missing);
        };
        // No store round trip for what cannot be a key (a JWT sent to the
        // wrong server, a truncated paste).
        if !well_formed(&key) {
            return Err(AuthError::Invalid(format!(
                "not a colloquy API key (those start with `{KEY_PREFIX}`)"
            )));
        }
        let presented = hash(&key);
        let record = self
            .shared
            .store
            .find_api_key(&presented)
            .await
            .map_err(|error| {
                AuthError::Unavailable(anyhow::Error::new(error).context("looking up an API key"))
            })?;
        // The lookup by hash is the comparison already; comparing the stored
        // hash again, in constant time, keeps a store that matches loosely
        // from letting a wrong key in.
        let Some(record) = record.filter(|record| bool::from(record.hash.ct_eq(&presented))) else {
            return Err(AuthError::Invalid("unknown API key".to_owned()));
        };
        if record.revoked_at.is_some() {
            return Err(AuthError::Revoked);
        }
        self.shared.note_use(record.id, Timestamp::now());
        Ok(record.principal)
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ApiKeyId, Timestamp>> {
        // The map is whole after every statement, so a panic elsewhere
        // while it was held leaves nothing to repair.
        self.unwritten
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn note_use(&self, id: ApiKeyId, at: Timestamp) {
        let mut unwritten = self.lock();
        let latest = unwritten.entry(id).or_insert(at);
        *latest = (*latest).max(at);
    }

    async fn flush(&self) -> Result<(), RepoError> {
        let mut batch: Vec<(ApiKeyId, Timestamp)> =
            std::mem::take(&mut *self.lock()).into_iter().collect();
        if batch.is_empty() {
            return Ok(());
        }
        batch.sort_unstable();
        let written = self.store.record_key_use(&batch).await;
        if written.is_err() {
            // Back for the next flush; the store keeps the later of two
            // times anyway, so a use noted meanwhile is not undone.
            for (id, at) in batch {
                self.note_use(id, at);
            }
        }
        written
    }
}

/// The background task of [`ApiKeys::new`]: it ends once the `ApiKeys` is gone.
async fn flush_periodically(shared: Weak<Shared>) {
    let mut every = tokio::time::interval_at(Instant::now() + FLUSH_EVERY, FLUSH_EVERY);
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if let Err(error) = shared.flush().await {
            tracing::warn!(error = %error, "could not record when API keys were last used; retrying in a minute");
        }
    }
}

/// `ck_` and 43 characters of the base64url alphabet: the shape of every
/// key [`ApiKeys::issue`] makes.
fn well_formed(key: &str) -> bool {
    key.strip_prefix(KEY_PREFIX).is_some_and(|secret| {
        secret.len() == SECRET_CHARS
            && secret
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
    })
}

/// What the store keeps of a key: the SHA-256 of its whole text, prefix included.
fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use colloquy_ports::MockApiKeyStore;

    use super::*;

    fn alice() -> Principal {
        Principal::parse("alice").unwrap()
    }

    /// A key as `issue` makes it, and its record as a store would hold it.
    fn a_key() -> (String, ApiKeyRecord) {
        let key = format!(
            "{KEY_PREFIX}{}",
            URL_SAFE_NO_PAD.encode([7_u8; SECRET_BYTES])
        );
        let record = ApiKeyRecord {
            id: ApiKeyId::new(),
            principal: alice(),
            label: None,
            hash: hash(&key),
            created_at: Timestamp::now(),
            last_used_at: None,
            revoked_at: None,
        };
        (key, record)
    }

    /// A store that knows `record` and nothing else, and has no expectation
    /// about writes.
    fn store_with(record: &ApiKeyRecord) -> MockApiKeyStore {
        let mut store = MockApiKeyStore::new();
        let known = record.clone();
        store
            .expect_find_api_key()
            .returning(move |hash| Ok(Some(known.clone()).filter(|known| known.hash == *hash)));
        store
    }

    async fn refusal(keys: &ApiKeys, bearer: &str) -> AuthError {
        keys.authenticate(Some(bearer.to_owned()))
            .await
            .expect_err("refused")
    }

    #[tokio::test]
    async fn an_issued_key_is_shown_once_and_only_its_hash_is_stored() {
        let stored = Arc::new(Mutex::new(None));
        let mut store = MockApiKeyStore::new();
        let keep = Arc::clone(&stored);
        store
            .expect_create_api_key()
            .times(1)
            .returning(move |record| {
                *keep.lock().unwrap() = Some(record.clone());
                Ok(())
            });
        let issued = ApiKeys::issue(&store, alice(), Some("ci".to_owned()))
            .await
            .unwrap();

        let record = stored.lock().unwrap().clone().unwrap();
        assert_eq!(record.id, issued.id);
        assert_eq!(record.principal, alice());
        assert_eq!(record.label.as_deref(), Some("ci"));
        assert_eq!(record.hash, hash(&issued.key));
        assert_eq!((record.last_used_at, record.revoked_at), (None, None));

        let secret = issued.key.strip_prefix(KEY_PREFIX).expect("the prefix");
        assert_eq!(secret.len(), SECRET_CHARS);
        assert_eq!(URL_SAFE_NO_PAD.decode(secret).unwrap().len(), SECRET_BYTES);
        assert!(well_formed(&issued.key));
        assert!(!format!("{issued:?}").contains(secret));

        let other = ApiKeys::issue(&store_accepting_anything(), alice(), None)
            .await
            .unwrap();
        assert_ne!(other.key, issued.key, "every key is new");
    }

    fn store_accepting_anything() -> MockApiKeyStore {
        let mut store = MockApiKeyStore::new();
        store.expect_create_api_key().returning(|_| Ok(()));
        store
    }

    #[tokio::test]
    async fn a_valid_key_is_its_principal() {
        let (key, record) = a_key();
        let keys = ApiKeys::new(Arc::new(store_with(&record)));
        assert_eq!(keys.authenticate(Some(key)).await.unwrap(), alice());
    }

    #[tokio::test]
    async fn no_key_is_missing() {
        let mut store = MockApiKeyStore::new();
        store.expect_find_api_key().never();
        let keys = ApiKeys::new(Arc::new(store));
        assert!(matches!(
            keys.authenticate(None).await,
            Err(AuthError::Missing)
        ));
    }

    #[tokio::test]
    async fn an_unknown_key_is_invalid() {
        let (_, record) = a_key();
        let keys = ApiKeys::new(Arc::new(store_with(&record)));
        let unknown = format!(
            "{KEY_PREFIX}{}",
            URL_SAFE_NO_PAD.encode([8_u8; SECRET_BYTES])
        );
        let error = refusal(&keys, &unknown).await;
        assert!(
            matches!(&error, AuthError::Invalid(why) if why == "unknown API key"),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn a_malformed_key_is_invalid_without_a_lookup() {
        let mut store = MockApiKeyStore::new();
        store.expect_find_api_key().never();
        let keys = ApiKeys::new(Arc::new(store));
        let (key, _) = a_key();
        let secret = &key[KEY_PREFIX.len()..];
        for bearer in [
            String::new(),
            "hello".to_owned(),
            KEY_PREFIX.to_owned(),
            secret.to_owned(),
            format!("sk_{secret}"),
            key[..key.len() - 1].to_owned(),
            format!("{key}A"),
            format!("{}+", &key[..key.len() - 1]),
            format!(" {key}"),
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl".to_owned(),
        ] {
            let error = refusal(&keys, &bearer).await;
            assert!(
                matches!(error, AuthError::Invalid(_)),
                "{bearer:?}: {error:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_revoked_key_is_refused_from_the_next_request_on() {
        let (key, record) = a_key();
        let lookups = AtomicUsize::new(0);
        let mut store = MockApiKeyStore::new();
        store.expect_find_api_key().returning(move |_| {
            let mut found = record.clone();
            if lookups.fetch_add(1, Ordering::SeqCst) > 0 {
                found.revoked_at = Some(Timestamp::now());
            }
            Ok(Some(found))
        });
        let keys = ApiKeys::new(Arc::new(store));
        assert_eq!(keys.authenticate(Some(key.clone())).await.unwrap(), alice());
        assert!(matches!(refusal(&keys, &key).await, AuthError::Revoked));
    }

    #[tokio::test]
    async fn a_failing_store_is_unavailable() {
        let mut store = MockApiKeyStore::new();
        store.expect_find_api_key().returning(|_| {
            Err(RepoError::Unavailable(anyhow::anyhow!(
                "database is locked"
            )))
        });
        let keys = ApiKeys::new(Arc::new(store));
        let (key, _) = a_key();
        let error = refusal(&keys, &key).await;
        assert!(matches!(error, AuthError::Unavailable(_)), "{error:?}");
    }

    #[tokio::test]
    async fn a_thousand_uses_cost_one_write() {
        let (key, record) = a_key();
        let id = record.id;
        let mut store = store_with(&record);
        store
            .expect_record_key_use()
            .withf(move |uses| uses.len() == 1 && uses[0].0 == id)
            .times(1)
            .returning(|_| Ok(()));
        let keys = ApiKeys::new(Arc::new(store));
        for _ in 0..1_000 {
            keys.authenticate(Some(key.clone())).await.unwrap();
        }
        keys.flush().await.unwrap();
        keys.flush().await.expect("nothing left to write: no call");
        assert!(keys.shared.lock().is_empty());
    }

    #[tokio::test]
    async fn the_last_use_of_each_key_is_written() {
        let (key, record) = a_key();
        let id = record.id;
        let written = Arc::new(Mutex::new(Vec::new()));
        let mut store = store_with(&record);
        let keep = Arc::clone(&written);
        store.expect_record_key_use().returning(move |uses| {
            keep.lock().unwrap().extend_from_slice(uses);
            Ok(())
        });
        let keys = ApiKeys::new(Arc::new(store));
        keys.authenticate(Some(key.clone())).await.unwrap();
        let between = Timestamp::now();
        keys.authenticate(Some(key)).await.unwrap();
        keys.flush().await.unwrap();
        let written = written.lock().unwrap().clone();
        assert_eq!(written.len(), 1);
        assert_eq!(written[0].0, id);
        assert!(written[0].1 >= between, "the later use");
    }

    #[tokio::test]
    async fn a_failed_write_is_retried_at_the_next_flush() {
        let (key, record) = a_key();
        let id = record.id;
        let mut store = store_with(&record);
        let attempts = AtomicUsize::new(0);
        store
            .expect_record_key_use()
            .withf(move |uses| uses.len() == 1 && uses[0].0 == id)
            .times(2)
            .returning(move |_| {
                if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(RepoError::Unavailable(anyhow::anyhow!(
                        "database is locked"
                    )))
                } else {
                    Ok(())
                }
            });
        let keys = ApiKeys::new(Arc::new(store));
        keys.authenticate(Some(key)).await.unwrap();
        assert!(keys.flush().await.is_err());
        keys.flush()
            .await
            .expect("the same use, written the second time");
        keys.flush().await.expect("and not a third");
    }

    #[tokio::test(start_paused = true)]
    async fn uses_are_written_every_minute_without_being_asked() {
        let (key, record) = a_key();
        let writes = Arc::new(AtomicUsize::new(0));
        let mut store = store_with(&record);
        let count = Arc::clone(&writes);
        store.expect_record_key_use().returning(move |_| {
            count.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
        let keys = ApiKeys::new(Arc::new(store));
        keys.authenticate(Some(key.clone())).await.unwrap();

        tokio::time::sleep(Duration::from_secs(59)).await;
        assert_eq!(writes.load(Ordering::SeqCst), 0, "not before a minute");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(writes.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(writes.load(Ordering::SeqCst), 1, "no use, no write");

        keys.authenticate(Some(key)).await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(writes.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn outside_a_runtime_only_flush_writes() {
        let (_, record) = a_key();
        let keys = ApiKeys::new(Arc::new(store_with(&record)));
        assert!(keys.ticker.is_none());
    }

    #[tokio::test]
    async fn no_refusal_shows_the_key() {
        let (key, record) = a_key();
        let mut revoked = record.clone();
        revoked.revoked_at = Some(Timestamp::now());
        let unknown = format!(
            "{KEY_PREFIX}{}",
            URL_SAFE_NO_PAD.encode([9_u8; SECRET_BYTES])
        );
        let mut failing = MockApiKeyStore::new();
        failing
            .expect_find_api_key()
            .returning(|_| Err(RepoError::Unavailable(anyhow::anyhow!("no connection"))));

        let cases: Vec<(ApiKeys, String)> = vec![
            (ApiKeys::new(Arc::new(store_with(&record))), unknown),
            (ApiKeys::new(Arc::new(store_with(&revoked))), key.clone()),
            (ApiKeys::new(Arc::new(failing)), key.clone()),
            (
                ApiKeys::new(Arc::new(store_with(&record))),
                format!("{key}x"),
            ),
            (
                ApiKeys::new(Arc::new(store_with(&record))),
                key[3..].to_owned(),
            ),
        ];
        for (keys, bearer) in cases {
            let error = refusal(&keys, &bearer).await;
            let secret = &bearer[bearer.len() - 20..];
            for shown in [
                error.to_string(),
                format!("{error:#}"),
                format!("{error:?}"),
            ] {
                assert!(!shown.contains(secret), "{shown}");
            }
        }
    }
}
