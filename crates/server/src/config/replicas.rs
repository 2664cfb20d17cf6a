//! The variables of several replicas: where Redis is, and how long a dead
//! replica's reply keeps its lease.

use std::time::Duration;

use anyhow::bail;

use super::{seconds, Secret};

/// `COLLOQUY_REDIS_URL`, `COLLOQUY_REDIS_KEY_PREFIX` and `COLLOQUY_LEASE_SECS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaConfig {
    /// With it, events, reply slots, cancels and limits go through Redis
    /// and any number of replicas serve every session. A secret: its URL
    /// may hold a password.
    pub redis_url: Option<Secret>,
    /// Put in front of every Redis key and channel, so that several
    /// services (or test runs) can share one Redis.
    pub redis_key_prefix: String,
    /// How long a reply slot (and a held place) outlives a replica that
    /// stopped renewing it.
    pub lease: Duration,
}

impl ReplicaConfig {
    /// Reads the variables through `get` (which treats empty as unset).
    ///
    /// # Errors
    /// A lease under a second or over an hour, or a URL that is not Redis's.
    pub(super) fn read(get: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let lease = seconds(get, "COLLOQUY_LEASE_SECS", "10")?;
        if lease < Duration::from_secs(1) || lease > Duration::from_secs(3600) {
            bail!(
                "COLLOQUY_LEASE_SECS must be between 1 and 3600 seconds, not {}",
                lease.as_secs_f64()
            );
        }
        let redis_url = get("COLLOQUY_REDIS_URL");
        if let Some(url) = &redis_url {
            if !(url.starts_with("redis://") || url.starts_with("unix://")) {
                bail!(
                    "COLLOQUY_REDIS_URL must be a redis:// (or unix://) URL{}",
                    if url.starts_with("rediss://") {
                        ": TLS to Redis is not built in; reach it over a private network or \
                         through a local TLS tunnel (stunnel, spiped)"
                    } else {
                        ""
                    }
                );
            }
        }
        Ok(Self {
            redis_url: redis_url.map(Secret),
            redis_key_prefix: get("COLLOQUY_REDIS_KEY_PREFIX")
                .unwrap_or_else(|| "colloquy:".to_owned()),
            lease,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn replicas(vars: &[(&str, &str)]) -> anyhow::Result<ReplicaConfig> {
        let vars: HashMap<&str, &str> = vars.iter().copied().collect();
        ReplicaConfig::read(&|name: &str| vars.get(name).map(|value| (*value).to_owned()))
    }

    #[test]
    fn without_redis_there_is_one_replica() {
        let config = replicas(&[]).unwrap();
        assert_eq!(config.redis_url, None);
        assert_eq!(config.lease, Duration::from_secs(10));
        assert_eq!(config.redis_key_prefix, "colloquy:");
    }

    #[test]
    fn the_redis_settings_are_read_and_checked() {
        let config = replicas(&[
            ("COLLOQUY_REDIS_URL", "redis://:pw@cache:6379/2"),
            ("COLLOQUY_LEASE_SECS", "2.5"),
            ("COLLOQUY_REDIS_KEY_PREFIX", "chat-a:"),
        ])
        .unwrap();
        assert_eq!(
            config.redis_url.as_ref().map(Secret::expose),
            Some("redis://:pw@cache:6379/2")
        );
        assert_eq!(config.lease, Duration::from_millis(2500));
        assert_eq!(config.redis_key_prefix, "chat-a:");
        assert!(!format!("{config:?}").contains("pw@"), "{config:?}");

        for lease in ["0", "0.5", "7200", "soon"] {
            let error = replicas(&[("COLLOQUY_LEASE_SECS", lease)]).unwrap_err();
            assert!(error.to_string().contains("COLLOQUY_LEASE_SECS"), "{error}");
        }
        let error = replicas(&[("COLLOQUY_REDIS_URL", "rediss://cache")]).unwrap_err();
        assert!(error.to_string().contains("TLS"), "{error}");
        let error = replicas(&[("COLLOQUY_REDIS_URL", "cache:6379")]).unwrap_err();
        assert!(error.to_string().contains("redis://"), "{error}");
    }
}
