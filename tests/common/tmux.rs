//! Terminal programs (newsreaders, mail readers) driven through tmux as a person
//! would drive them: keys in, the screen's text out.

use std::process::Command;
use std::time::Duration;

/// Shows a tmux pane's text.
pub fn screen(session: &str) -> String {
    let out = Command::new("tmux")
        .args(["capture-pane", "-p", "-t", session])
        .output()
        .expect("tmux must be installed (.ci/run installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until the pane shows `text`; panics with the screen after 30 s.
pub fn wait_for(session: &str, text: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let shown = screen(session);
        if shown.contains(text) {
            return shown;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "waiting for {text:?}; screen:\n{shown}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until the pane no longer shows `text`; panics with the screen after 30 s.
pub fn wait_gone(session: &str, text: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let shown = screen(session);
        if !shown.contains(text) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "waiting for {text:?} to go; screen:\n{shown}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn keys(session: &str, keys: &[&str]) {
    let status = Command::new("tmux")
        .args(["send-keys", "-t", session])
        .args(keys)
        .status()
        .unwrap();
    assert!(status.success());
}

/// A tmux session (120x40) running one command, ended when the test ends, however it
/// ends.
pub struct Tmux(String);

impl Tmux {
    pub fn start(session: &str, command: &str) -> Tmux {
        let status = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                session,
                "-x",
                "120",
                "-y",
                "40",
                command,
            ])
            .status()
            .expect("tmux must be installed (.ci/run installs it)");
        assert!(status.success());
        Tmux(session.to_owned())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .status();
    }
}
