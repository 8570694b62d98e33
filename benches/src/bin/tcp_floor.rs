//! `tcp_floor`: the machine's floor for a remote round trip. Two OS
//! processes (this binary and a copy of itself it starts) bounce 8 bytes
//! over one loopback TCP connection with `TCP_NODELAY`, with no runtime,
//! no framing and no encoding: what any distributed runtime's ping-pong
//! (ours and Erlang's, `dist_bench --parts pp`) pays at least.
//!
//! Blocking reads (the default) measure what a round trip costs when both
//! sides sleep in the kernel between messages, as idle nodes do: two
//! wake-ups of a sleeping thread. `--spin` makes both sides poll the socket
//! without sleeping, which shows how much of the floor is those wake-ups.
//!
//! ```text
//! cargo run --release -p pool-benches --bin tcp_floor
//! cargo run --release -p pool-benches --bin tcp_floor -- --spin --trips 20000 --reps 5
//! ```

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, ExitCode};
use std::time::Instant;

use pool_benches::Flags;

const USAGE: &str = "tcp_floor: loopback TCP round trip between two processes, no runtime.

usage: tcp_floor [--trips N] [--reps N] [--spin]";

/// Reads exactly `buf.len()` bytes, polling without sleeping if `spin`.
fn read_exact(s: &mut TcpStream, buf: &mut [u8], spin: bool) -> std::io::Result<()> {
    if !spin {
        return s.read_exact(buf);
    }
    let mut got = 0;
    while got < buf.len() {
        match s.read(&mut buf[got..]) {
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn echo(port: u16, spin: bool) -> std::io::Result<()> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_nodelay(true)?;
    s.set_nonblocking(spin)?;
    let mut buf = [0u8; 8];
    loop {
        match read_exact(&mut s, &mut buf, spin) {
            Ok(()) => s.write_all(&buf)?,
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

fn main() -> ExitCode {
    let flags = Flags::from_env(USAGE);
    let spin = flags.has("spin");
    if flags.has("echo") {
        let port: u16 = flags.value("echo", 0u16);
        return match echo(port, spin) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tcp_floor echo: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let trips: usize = flags.value("trips", 20_000usize).max(1);
    let reps: usize = flags.value("reps", 5usize).max(1);
    let run = || -> std::io::Result<Vec<(f64, f64)>> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.arg("--echo").arg(port.to_string());
        if spin {
            cmd.arg("--spin");
        }
        let mut child = cmd.spawn()?;
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        s.set_nonblocking(spin)?;
        let mut figures = Vec::new();
        let mut buf = [7u8; 8];
        for _ in 0..reps {
            let mut us = Vec::with_capacity(trips);
            for _ in 0..trips {
                let t0 = Instant::now();
                s.write_all(&buf)?;
                read_exact(&mut s, &mut buf, spin)?;
                us.push(t0.elapsed().as_nanos() as f64 / 1000.0);
            }
            us.sort_by(f64::total_cmp);
            figures.push((us[us.len() / 2], us[us.len() * 99 / 100]));
        }
        drop(s);
        let _ = child.wait();
        Ok(figures)
    };
    match run() {
        Ok(figures) => {
            let mut p50: Vec<f64> = figures.iter().map(|f| f.0).collect();
            let mut p99: Vec<f64> = figures.iter().map(|f| f.1).collect();
            p50.sort_by(f64::total_cmp);
            p99.sort_by(f64::total_cmp);
            let mode = if spin { "spinning" } else { "blocking" };
            println!(
                "loopback TCP round trip, {mode}, {trips} trips x {reps}: p50 median {:.1} us (min {:.1}, max {:.1}), p99 median {:.1} us",
                p50[reps / 2],
                p50[0],
                p50[reps - 1],
                p99[reps / 2]
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tcp_floor: {e}");
            ExitCode::FAILURE
        }
    }
}
