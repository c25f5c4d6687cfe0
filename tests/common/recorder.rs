//! An HTTP server recording the path of every request: webhook code calls it, so a test
//! sees from outside whether (and in which order) the code ran.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An HTTP server recording the path of every request, in arrival order.
pub struct Recorder {
    port: u16,
    hits: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&hits);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                kept.lock()
                    .unwrap()
                    .push(path.trim_start_matches('/').to_string());
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            }
        });
        Self { port, hits }
    }

    /// Webhook code that tells the recorder `what` (a Python expression).
    pub fn call(&self, what: &str) -> String {
        format!(
            "requests.get('http://127.0.0.1:{}/' + str({what}), timeout=5)",
            self.port
        )
    }

    pub fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }

    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        while self.hits().len() < count && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.hits()
    }
}
