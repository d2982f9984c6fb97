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

/// `GET path` until it answers (the process may still be starting); (status, body).
fn get(addr: &str, path: &str) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut s) = TcpStream::connect(addr) {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            write!(
                s,
                "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut text = String::new();
            s.read_to_string(&mut text).unwrap();
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
    let _sim = Running(
        Command::new(env!("CARGO_BIN_EXE_channel-sim"))
            .args(["--listen", &control, "--channel", "bank_a"])
            .args(["--channel", r#"bank_b={"latency_ms":5,"error_rate":0.3}"#])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (status, body) = get(&control, "/_sim/channels");
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
    let _sim = Running(
        Command::new(env!("CARGO_BIN_EXE_sms-sim"))
            .args(["--listen", &addr, "--key", "sms_dev_key_0123456789"])
            .args(["--fail-rate", "0.5", "--receipt-delay-ms", "10"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (status, body) = get(&addr, "/_sim/messages");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""data":[]"#), "{body}");
}
