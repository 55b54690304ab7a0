//! The processes a run left behind, if any.

use std::time::Duration;

use super::MARK;

/// The live processes the supervisor spawned, after waiting up to `bound`
/// for them to go: children of this process (not zombies), and any process
/// that carries the storm's mark in its environment (a grandchild, or a
/// child that was reparented). A pid reused by another program matches
/// neither.
pub fn orphans(mark: &str, bound: Duration) -> Vec<String> {
    let me = std::process::id().to_string();
    let needle = format!("{MARK}={mark}");
    let find = || {
        let mut found = Vec::new();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return found;
        };
        for entry in dir.flatten() {
            let pid = entry.file_name().to_string_lossy().into_owned();
            if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
                continue;
            }
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue; // gone meanwhile
            };
            // After the command's closing parenthesis: state, ppid, ...
            let mut fields = stat.rsplit(')').next().unwrap_or("").split_whitespace();
            let (state, ppid) = (fields.next(), fields.next());
            if state == Some("Z") {
                continue; // dead, only not reaped yet
            }
            let child = ppid == Some(me.as_str());
            let marked = std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == needle.as_bytes()));
            if child || marked {
                found.push(format!(
                    "{pid}: {}",
                    stat.split(')').next().unwrap_or("").trim()
                ));
            }
        }
        found
    };
    let until = std::time::Instant::now() + bound;
    loop {
        let found = find();
        if found.is_empty() || std::time::Instant::now() > until {
            return found;
        }
        // A SIGKILLed process needs its kernel's moment to go.
        std::thread::sleep(Duration::from_millis(10));
    }
}
