//! The simulators as the README, the benchmarks and payd's tests start them: the binaries
//! keep their names and flags, and their control planes answer over real HTTP.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// Kills the child however the test ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    /// The process's exit status (if it ended) and what it wrote on stderr, killing it first:
    /// for a failure's message.
    fn report(&mut self) -> String {
        let exited = self.0.try_wait().ok().flatten();
        let _ = self.0.kill();
        let _ = self.0.wait();
        let mut stderr = String::new();
        if let Some(mut e) = self.0.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        format!("exited before the kill: {exited:?}; stderr: {stderr:?}")
    }
}

/// `GET path` from `sim` until it answers (the process may still be starting); (status,
/// body). A connection that fails after it was accepted fails the test with the sim's stderr.
fn get(sim: &mut Running, addr: &str, path: &str) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut s) = TcpStream::connect(addr) {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut text = String::new();
            let answered = write!(
                s,
                "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
            )
            .and_then(|_| s.read_to_string(&mut text));
            if let Err(e) = answered {
                panic!("GET {path} from {addr}: {e}; the sim {}", sim.report());
            }
            let status = text[9..12].parse().unwrap();
            let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string());
            return (status, body.unwrap_or_default());
        }
        assert!(Instant::now() < deadline, "{addr} did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn channel_sim_starts_with_its_flags_and_lists_its_channels() {
    let control = free_addr();
    let mut sim = Running(
        Command::new(env!("CARGO_BIN_EXE_channel-sim"))
            .args(["--listen", &control, "--channel", "bank_a"])
            .args(["--channel", r#"bank_b={"latency_ms":5,"error_rate":0.3}"#])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (status, body) = get(&mut sim, &control, "/_sim/channels");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""name":"bank_a""#), "{body}");
    assert!(body.contains(r#""error_rate":0.3"#), "{body}");
}

#[test]
fn channel_sim_refuses_a_bad_channel_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_channel-sim"))
        .args(["--listen", &free_addr(), "--channel", "bank_a={not json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--channel bank_a={not json"));
}

#[test]
fn sms_sim_starts_with_its_flags_and_lists_messages() {
    let addr = free_addr();
    let mut sim = Running(
        Command::new(env!("CARGO_BIN_EXE_sms-sim"))
            .args(["--listen", &addr, "--key", "sms_dev_key_0123456789"])
            .args(["--fail-rate", "0.5", "--receipt-delay-ms", "10"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (status, body) = get(&mut sim, &addr, "/_sim/messages");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""data":[]"#), "{body}");
}
