//! Driving a running `rp listen`: start it on a free port, post callbacks, stop it.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

/// Starts `rp listen --port 0 ARGS` with `key` in `RP_SECRET_KEY`, no `RP_PROJECT_ID` and
/// each of `env` set; returns the child and the address it announced. Its stderr keeps being
/// read, so the receiver never writes to a closed pipe.
pub(crate) fn spawn_listen(args: &[&str], key: &str, env: &[(&str, &str)]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rp"))
        .args(["listen", "--port", "0"])
        .args(args)
        .env("RP_SECRET_KEY", key)
        .env_remove("RP_PROJECT_ID")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (child, addr)
}

/// POSTs `body` as JSON to `addr` and returns the HTTP status.
pub(crate) fn post_callback(addr: &str, body: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /rocketpay/callback HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"))
}

/// Stops the receiver and returns everything it printed on stdout.
pub(crate) fn stop_and_read(mut child: Child) -> String {
    child.kill().unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let _ = child.wait();
    out
}
