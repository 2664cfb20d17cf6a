//! Redis for the tests of several replicas: a key prefix of each test's own
//! on the machine's Redis (deleted when the test ends), and a TCP proxy in
//! front of it that a test cuts to make Redis go away for one replica.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The Redis the tests use: `COLLOQUY_TEST_REDIS_URL`, else the machine's
/// own (as in the Redis adapter's tests).
fn redis_url() -> String {
    std::env::var("COLLOQUY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Keys of one test's own on the real Redis: replicas given this prefix
/// never see another test's sessions, leases or limits.
#[derive(Debug)]
pub struct TestRedis {
    pub url: String,
    pub prefix: String,
}

impl TestRedis {
    /// # Panics
    /// When Redis does not answer, saying how to start it.
    pub fn new() -> Self {
        let url = redis_url();
        if let Err(error) = ping(&url) {
            panic!(
                "Redis is not reachable at {url} ({error}). The tests of several replicas need a \
                 real Redis: `.ci/run` starts the machine's own when it is stopped (`redis-server \
                 --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save \"\" --appendonly no`), \
                 or set COLLOQUY_TEST_REDIS_URL to one that runs."
            );
        }
        Self {
            url,
            prefix: format!("colloquy-test:{}:", uuid::Uuid::now_v7().simple()),
        }
    }

    /// Redis's own address (`host:port`), for a proxy in front of it.
    pub fn address(&self) -> String {
        redis::Client::open(self.url.as_str())
            .unwrap()
            .get_connection_info()
            .addr()
            .to_string()
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        // Streams and leases expire by themselves, but not every key has a
        // TTL (the shared stream-token key has none): leave Redis as found.
        let Ok(mut connection) =
            redis::Client::open(self.url.as_str()).and_then(|client| client.get_connection())
        else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query(&mut connection)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut connection);
        }
    }
}

fn ping(url: &str) -> redis::RedisResult<()> {
    let mut connection = redis::Client::open(url)?.get_connection()?;
    redis::cmd("PING").query::<String>(&mut connection)?;
    Ok(())
}

/// The proxy's state and how many cuts there were: a connection made before
/// a cut stays closed even when the proxy is restored before it noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct State {
    open: bool,
    cuts: u64,
}

/// Forwards to Redis until cut: then every connection through it is closed
/// and new ones are refused, which is what a replica sees when Redis is down.
#[derive(Debug)]
pub struct Proxy {
    address: SocketAddr,
    state: watch::Sender<State>,
    accepting: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accepting.abort();
    }
}

impl Proxy {
    /// A proxy to `upstream` (`host:port`) on a free local port.
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (state, _) = watch::channel(State {
            open: true,
            cuts: 0,
        });
        let accepting = tokio::spawn(accept(listener, upstream, state.clone()));
        Self {
            address,
            state,
            accepting,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://{}", self.address)
    }

    /// `url` with its `host:port` replaced by this proxy's: the same
    /// server, reached through the proxy (for PostgreSQL's URL too).
    pub fn in_front_of(&self, url: &str) -> String {
        url.replacen(&host_and_port(url), &self.address.to_string(), 1)
    }

    pub fn cut(&self) {
        self.state.send_modify(|state| {
            state.open = false;
            state.cuts += 1;
        });
    }

    pub fn restore(&self) {
        self.state.send_modify(|state| state.open = true);
    }
}

async fn accept(listener: TcpListener, upstream: String, state: watch::Sender<State>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        if !state.borrow().open {
            // Redis is down: the connection is refused (closed at once).
            drop(client);
            continue;
        }
        let Ok(server) = TcpStream::connect(&upstream).await else {
            continue;
        };
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        tokio::spawn(pump(client_read, server_write, state.subscribe()));
        tokio::spawn(pump(server_read, client_write, state.subscribe()));
    }
}

/// Copies `from` to `to` until either side closes or the proxy is cut.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut state: watch::Receiver<State>) {
    let made_after = state.borrow().cuts;
    let mut buffer = vec![0_u8; 64 * 1024];
    loop {
        let now = *state.borrow_and_update();
        if !now.open || now.cuts != made_after {
            return;
        }
        tokio::select! {
            read = from.read(&mut buffer) => {
                let read = match read {
                    Ok(0) | Err(_) => return,
                    Ok(read) => read,
                };
                if to.write_all(&buffer[..read]).await.is_err() {
                    return;
                }
            }
            changed = state.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// The `host:port` of a URL such as `postgres://user@host:port/db`.
pub fn host_and_port(url: &str) -> String {
    let start = url.rfind('@').map_or_else(
        || url.find("://").map_or(0, |scheme| scheme + 3),
        |at| at + 1,
    );
    let end = url[start..]
        .find('/')
        .map_or(url.len(), |slash| start + slash);
    url[start..end].to_owned()
}
