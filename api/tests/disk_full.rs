//! A full disk at the HTTP level: payd on a small tmpfs answers `503 storage_unavailable`
//! (never a 500), `/readyz` turns 503, every acknowledged deposit survives, and after space
//! is freed a restart recovers and takes writes again. Needs root (mounts a tmpfs).

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::common::*;

struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn disk_full_answers_503_keeps_every_201_and_recovers() {
    let root = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(root.path())
        .status()
        .expect("run mount");
    assert!(mounted.success(), "this test mounts a tmpfs and needs root");
    let tmpfs = Tmpfs(root.path().to_path_buf());
    let dir = root.path().join("data");
    let env = [("RONGPAY_ADMIN_TOKEN", ADMIN)];
    let p = Arc::new(Payd::start_in(&dir, &env));
    let account = empty_account(&p);
    let path = format!("/v1/accounts/{account}/deposits");
    let reference = "r".repeat(256);
    let acked = Arc::new(Mutex::new(0u64));
    let full = Arc::new(AtomicBool::new(false));
    let codes = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (p, path, reference) = (Arc::clone(&p), path.clone(), reference.clone());
            let (acked, full, codes) = (Arc::clone(&acked), Arc::clone(&full), Arc::clone(&codes));
            std::thread::spawn(move || {
                for _ in 0..20_000 {
                    if full.load(Ordering::Relaxed) {
                        break;
                    }
                    let r = p.admin(
                        "POST",
                        &path,
                        &format!(r#"{{"amount":"1.00","reference":"{reference}"}}"#),
                    );
                    match r.status {
                        201 => *acked.lock().unwrap() += 1,
                        status => {
                            assert!(status < 500 || status == 503, "never a 500: {status}");
                            codes.lock().unwrap().push((status, r.error_code()));
                            full.store(true, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let acked = *acked.lock().unwrap();
    let codes = codes.lock().unwrap().clone();
    assert!(full.load(Ordering::Relaxed), "8 MiB must fill up");
    assert!(
        codes
            .iter()
            .all(|(s, c)| *s == 503 && c == "storage_unavailable"),
        "{codes:?}"
    );
    let ready = p.req("GET", "/readyz", &[], b"");
    assert_eq!(
        (ready.status, ready.error_code().as_str()),
        (503, "storage_unavailable")
    );
    println!("disk full after {acked} acknowledged deposits; answers {codes:?}");
    drop(Arc::try_unwrap(p).ok().expect("workers finished"));

    let grown = Command::new("mount")
        .args(["-o", "remount,size=256m"])
        .arg(&tmpfs.0)
        .status()
        .unwrap();
    assert!(grown.success());
    let p = Payd::start_in(&dir, &env);
    let balance = p
        .admin("GET", &format!("/v1/accounts/{account}"), "")
        .json()["balance"]
        .as_str()
        .unwrap()
        .to_string();
    let cents: u64 = balance.replace('.', "").parse().unwrap();
    assert!(
        cents >= acked * 100,
        "every acknowledged deposit survived: {balance} for {acked} acks"
    );
    assert_eq!(
        p.admin("POST", &path, r#"{"amount":"1.00"}"#).status,
        201,
        "writes again after space is freed"
    );
}
