//! A local HTTP CONNECT proxy, as corporate proxies are: every tunnel it opens goes to one
//! address (the fake API server), whatever host the client named, and it records the names.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serves until dropped.
pub struct FakeProxy {
    addr: SocketAddr,
    connects: Arc<Mutex<Vec<String>>>,
    _thread: std::thread::JoinHandle<()>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FakeProxy {
    /// A proxy on `127.0.0.1:0` whose tunnels all lead to `target`.
    pub fn start(target: SocketAddr) -> FakeProxy {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("proxy: bind");
        std_listener
            .set_nonblocking(true)
            .expect("proxy: nonblocking");
        let addr = std_listener.local_addr().expect("proxy: addr");
        let connects = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&connects);
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("proxy: runtime");
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).expect("proxy: listener");
                loop {
                    tokio::select! {
                        _ = &mut rx => break,
                        accepted = listener.accept() => {
                            if let Ok((client, _)) = accepted {
                                tokio::spawn(tunnel(client, target, Arc::clone(&seen)));
                            }
                        }
                    }
                }
            });
        });
        FakeProxy {
            addr,
            connects,
            _thread: thread,
            shutdown: Some(tx),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `host:port` of every CONNECT so far.
    pub fn connects(&self) -> Vec<String> {
        self.connects.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl Drop for FakeProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

async fn tunnel(mut client: TcpStream, target: SocketAddr, seen: Arc<Mutex<Vec<String>>>) {
    // The request head, up to the blank line.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        match client.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut words = text.split_whitespace();
    if words.next() != Some("CONNECT") {
        let _ = client
            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    }
    if let (Some(authority), Ok(mut s)) = (words.next(), seen.lock()) {
        s.push(authority.to_string());
    }
    let Ok(mut upstream) = TcpStream::connect(target).await else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_err()
    {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}
