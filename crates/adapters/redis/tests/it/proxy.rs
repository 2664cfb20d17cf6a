//! A TCP proxy in front of the test Redis, for one replica: it forwards
//! until told to stall (connections stay open, nothing gets through: a
//! partition or a hung server) or to cut (every connection is closed and
//! new ones are refused: Redis is down), and it counts the commands that
//! go through it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Open,
    Stalled,
    Cut,
}

/// The mode, and how many cuts there were: a connection made before a cut
/// stays closed even when the proxy is restored before it noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct State {
    mode: Mode,
    cuts: u64,
}

#[derive(Debug)]
pub struct Proxy {
    address: SocketAddr,
    mode: watch::Sender<State>,
    commands: Arc<Mutex<Commands>>,
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
        let (mode, _) = watch::channel(State {
            mode: Mode::Open,
            cuts: 0,
        });
        let commands = Arc::new(Mutex::new(Commands::default()));
        let accepting = tokio::spawn(accept(
            listener,
            upstream,
            mode.clone(),
            Arc::clone(&commands),
        ));
        Self {
            address,
            mode,
            commands,
            accepting,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://{}", self.address)
    }

    pub fn cut(&self) {
        self.mode.send_modify(|state| {
            state.mode = Mode::Cut;
            state.cuts += 1;
        });
    }

    pub fn stall(&self) {
        self.mode.send_modify(|state| state.mode = Mode::Stalled);
    }

    pub fn restore(&self) {
        self.mode.send_modify(|state| state.mode = Mode::Open);
    }

    /// How many commands of each name went through since the last reset.
    pub fn commands(&self) -> HashMap<String, usize> {
        self.commands.lock().unwrap().counts.clone()
    }

    pub fn reset_counts(&self) {
        self.commands.lock().unwrap().counts.clear();
    }
}

async fn accept(
    listener: TcpListener,
    upstream: String,
    mode: watch::Sender<State>,
    commands: Arc<Mutex<Commands>>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        if mode.borrow().mode == Mode::Cut {
            // Redis is down: the connection is refused (closed at once).
            drop(client);
            continue;
        }
        let Ok(server) = TcpStream::connect(&upstream).await else {
            continue;
        };
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        tokio::spawn(pump(
            client_read,
            server_write,
            mode.subscribe(),
            Some(Arc::clone(&commands)),
        ));
        tokio::spawn(pump(server_read, client_write, mode.subscribe(), None));
    }
}

/// Copies `from` to `to` while the proxy is open, holds everything while it
/// is stalled, and closes both when it is cut.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut mode: watch::Receiver<State>,
    commands: Option<Arc<Mutex<Commands>>>,
) {
    let made_after = mode.borrow().cuts;
    let mut buffer = vec![0_u8; 64 * 1024];
    loop {
        loop {
            let state = *mode.borrow_and_update();
            if state.cuts != made_after {
                return;
            }
            match state.mode {
                Mode::Open => break,
                Mode::Cut => return,
                Mode::Stalled => {}
            }
            if mode.changed().await.is_err() {
                return;
            }
        }
        tokio::select! {
            read = from.read(&mut buffer) => {
                let read = match read {
                    Ok(0) | Err(_) => return,
                    Ok(read) => read,
                };
                if let Some(commands) = &commands {
                    commands.lock().unwrap().feed(&buffer[..read]);
                }
                if to.write_all(&buffer[..read]).await.is_err() {
                    return;
                }
            }
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// Counts the commands in a client's byte stream (RESP arrays of bulk
/// strings, as every client library sends them).
#[derive(Debug, Default)]
struct Commands {
    unparsed: Vec<u8>,
    counts: HashMap<String, usize>,
}

impl Commands {
    fn feed(&mut self, bytes: &[u8]) {
        self.unparsed.extend_from_slice(bytes);
        while let Some((length, name)) = first_command(&self.unparsed) {
            *self.counts.entry(name).or_default() += 1;
            self.unparsed.drain(..length);
        }
    }
}

/// The length and name of the first complete command in `bytes`.
fn first_command(bytes: &[u8]) -> Option<(usize, String)> {
    let (count, mut at) = number_line(bytes, 0, b'*')?;
    let mut name = String::new();
    for index in 0..count {
        let (length, start) = number_line(bytes, at, b'$')?;
        let end = start + length;
        if bytes.len() < end + 2 {
            return None;
        }
        if index == 0 {
            name = String::from_utf8_lossy(&bytes[start..end]).to_uppercase();
        }
        at = end + 2;
    }
    Some((at, name))
}

/// `<marker><number>\r\n` at `at`: the number and where the line ends.
fn number_line(bytes: &[u8], at: usize, marker: u8) -> Option<(usize, usize)> {
    if *bytes.get(at)? != marker {
        return None;
    }
    let end = at + bytes[at..].windows(2).position(|pair| pair == b"\r\n")?;
    let number = std::str::from_utf8(&bytes[at + 1..end])
        .ok()?
        .parse()
        .ok()?;
    Some((number, end + 2))
}

#[test]
fn commands_are_counted_however_they_are_split() {
    let mut commands = Commands::default();
    let wire = b"*2\r\n$4\r\nEcho\r\n$3\r\nhi!\r\n*1\r\n$4\r\nPING\r\n";
    for chunk in wire.chunks(3) {
        commands.feed(chunk);
    }
    assert_eq!(commands.counts.get("ECHO"), Some(&1));
    assert_eq!(commands.counts.get("PING"), Some(&1));
    assert!(commands.unparsed.is_empty());
}
