//! HAProxy from Debian's package, run in the foreground with the repository's
//! `deploy/haproxy.cfg`, and free ports for what it balances.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `haproxy -f deploy/haproxy.cfg` in the foreground (the configuration checked first),
/// its log kept; stopped when dropped.
pub struct Haproxy {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Haproxy {
    pub fn start(env: &[(&str, String)], listen_port: u16) -> Self {
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/haproxy.cfg");
        let check = Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&config)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run haproxy ({e}): install Debian's package \
                     (`apt-get install haproxy`; scripts/test.sh does)"
                )
            });
        assert!(
            check.status.success(),
            "deploy/haproxy.cfg does not load: {}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        let mut child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", listen_port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "haproxy exited ({status}): {}",
                    log.lock().unwrap().join("\n")
                );
            }
            assert!(Instant::now() < deadline, "haproxy does not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, log }
    }

    /// Its log so far (stdout and stderr).
    pub fn lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
