//! A throwaway PostgreSQL cluster for the tests: `initdb` in a fresh directory (under the
//! target directory when the server's user can reach it, else the system's temp directory),
//! a server on `127.0.0.1` and a free port, stopped (`pg_ctl stop -m fast`) and removed when
//! the [`Cluster`] is dropped, whether the tests passed or not.
//!
//! The server binaries come from `$RP_POSTGRES_BIN` or the newest
//! `/usr/lib/postgresql/*/bin` (Debian's `postgresql-NN` packages). `initdb` refuses to run
//! as root, so as root every server command runs as the unprivileged `postgres` user
//! (`runuser`), which owns the directory; anyone else runs them as themselves.
//!
//! Authentication: the superuser `postgres` is trusted on 127.0.0.1 (the tests create their
//! databases with it); every other user must give a password (`scram-sha-256`), so the tests
//! can check that a wrong one is refused.

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The user the server runs as when we are root.
const SERVER_USER: &str = "postgres";

/// `pg_hba.conf` of the throwaway cluster.
const HBA: &str = "\
# rp xtask: a throwaway cluster for tests, on 127.0.0.1 only.
local all all                 trust
host  all postgres 127.0.0.1/32 trust
host  all all      127.0.0.1/32 scram-sha-256
";

/// A running throwaway cluster; stopped and removed on drop.
pub(crate) struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    run_as: Option<&'static str>,
    url: String,
    stopped: bool,
}

impl Cluster {
    /// Starts a cluster, or says why none can be had (and what to do).
    pub(crate) fn start(root: &Path) -> Result<Cluster, String> {
        let bin = server_binaries()?;
        let run_as = if is_root() {
            if !user_exists(SERVER_USER) {
                return Err(format!(
                    "running as root, and initdb refuses root, but there is no `{SERVER_USER}` user to run it as \
                     (installing Debian's postgresql package creates it)"
                ));
            }
            Some(SERVER_USER)
        } else {
            None
        };
        let dir = directory(root, run_as)?;
        let mut cluster = Cluster {
            dir,
            bin,
            run_as,
            url: String::new(),
            stopped: true,
        };
        cluster.init()?;
        cluster.run_server()?;
        Ok(cluster)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`: the superuser, trusted.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A server command, as the server's user when we are root.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(path);
                command
            }
            None => Command::new(path),
        }
    }

    fn init(&self) -> Result<(), String> {
        let output = self
            .command("initdb")
            .arg("-D")
            .arg(self.data())
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
                "--no-instructions",
            ])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run initdb (as {}): {e}", self.who()))?;
        if !output.status.success() {
            return Err(format!(
                "initdb (as {}) failed: {}{}",
                self.who(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let hba = self.data().join("pg_hba.conf");
        std::fs::write(&hba, HBA).map_err(|e| format!("cannot write {}: {e}", hba.display()))?;
        Ok(())
    }

    /// Starts the server on a free port (a second port if the first was taken meanwhile).
    fn run_server(&mut self) -> Result<(), String> {
        let mut last = String::new();
        for _ in 0..2 {
            let port = free_port()?;
            let options = format!(
                "-c listen_addresses=127.0.0.1 -p {port} -k '{}' -c max_connections=200",
                self.dir.display()
            );
            let log = self.dir.join("server.log");
            let status = self
                .command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60", "-o", &options, "start"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .status()
                .map_err(|e| format!("cannot run pg_ctl (as {}): {e}", self.who()))?;
            if status.success() {
                self.stopped = false;
                self.url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
                return Ok(());
            }
            last = format!(
                "pg_ctl start failed ({status}); the server's log says:\n{}",
                tail(&log)
            );
        }
        Err(last)
    }

    fn who(&self) -> &str {
        self.run_as.unwrap_or("this user")
    }

    /// Stops the server (fast: open connections are cut) and removes the directory.
    pub(crate) fn stop(&mut self) {
        if !self.stopped {
            self.stopped = true;
            let stopped = self
                .command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", "fast", "-w", "stop"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .status();
            match stopped {
                Ok(status) if status.success() => {}
                Ok(status) => eprintln!(
                    "xtask: pg_ctl stop exited with {status}; the server in {} may still run",
                    self.dir.display()
                ),
                Err(e) => eprintln!("xtask: cannot run pg_ctl stop: {e}"),
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("xtask: cannot remove {}: {e}", self.dir.display());
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The server binaries: `$RP_POSTGRES_BIN`, else the newest `/usr/lib/postgresql/*/bin`
/// that has `initdb`, `pg_ctl` and `postgres`.
fn server_binaries() -> Result<PathBuf, String> {
    let complete = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|p| dir.join(p).is_file())
    };
    if let Some(dir) = std::env::var_os("RP_POSTGRES_BIN") {
        let dir = PathBuf::from(dir);
        return if complete(&dir) {
            Ok(dir)
        } else {
            Err(format!(
                "RP_POSTGRES_BIN={} lacks initdb, pg_ctl or postgres",
                dir.display()
            ))
        };
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            complete(&bin).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).ok_or_else(|| {
        "no PostgreSQL server binaries (looked for initdb, pg_ctl and postgres in /usr/lib/postgresql/*/bin; \
         set RP_POSTGRES_BIN to another directory, or install them: apt-get install postgresql-15)"
            .to_owned()
    })
}

/// A fresh directory the server's user can write: under the target directory if that user
/// can reach it, else under the system's temp directory.
fn directory(root: &Path, run_as: Option<&str>) -> Result<PathBuf, String> {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let name = format!("rp-postgres-{}", std::process::id());
    let mut tried = Vec::new();
    for base in [target, std::env::temp_dir()] {
        let dir = base.join(&name);
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tried.push(format!("{}: {e}", dir.display()));
            continue;
        }
        let Some(user) = run_as else {
            return Ok(dir);
        };
        let chowned = Command::new("chown")
            .arg(format!("{user}:"))
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        let writable = chowned
            && Command::new("runuser")
                .args(["-u", user, "--", "test", "-w"])
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
        if writable {
            return Ok(dir);
        }
        tried.push(format!("{}: not writable by {user}", dir.display()));
        let _ = std::fs::remove_dir_all(&dir);
    }
    Err(format!(
        "no directory for the cluster ({})",
        tried.join("; ")
    ))
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    })
}

fn user_exists(user: &str) -> bool {
    Command::new("id")
        .arg("-u")
        .arg(user)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        && Command::new("runuser")
            .args(["-u", user, "--", "true"])
            .status()
            .is_ok_and(|s| s.success())
}

/// The last lines of a log file.
fn tail(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
