//! Master capacity (PERF.md "master capacity" and "placement query answered
//! by the master ... over the wire"), against the real `pool-master` binary
//! run as a child process so that its CPU use can be read from
//! `/proc/<pid>/stat` apart from the simulated nodes'.
//!
//! ```text
//! cargo bench -p pool-master --bench capacity
//! CAPACITY_NODES=2000 CAPACITY_SECS=5 cargo bench -p pool-master --bench capacity
//! CAPACITY_ONLY=reports CAPACITY_NODES=1000 cargo bench -p pool-master --bench capacity
//! ```
//!
//! 1. **Reports.** `CAPACITY_NODES` (default 10,000) lightweight simulated
//!    workers — in this process, speaking the real protocol (TCP, handshake,
//!    Join) — report every 500 ms (phases spread evenly). The ramp-up line
//!    gives the time for all to join, the master's CPU meanwhile, and every
//!    byte the nodes read until the membership pushes have drained
//!    (`Welcome` answers included), in total and per node. Then the master's
//!    CPU (utime + stime) is measured over `CAPACITY_SECS` (default 10 s).
//!    Afterwards `ListNodes` must list every node with a fresh report: none
//!    was declared down. Target: 10,000 nodes on < 50 % of a core.
//! 2. **Placement queries.** A fresh master with 8 idle workers; 4 hidden
//!    clients pipeline committed `Place` queries (2 × 256 in flight each)
//!    for `CAPACITY_SECS`. Target: ≥ 200 k answers per second.
//!
//! `CAPACITY_ONLY=reports` (or `placement`) runs only that part;
//! `CAPACITY_MASTER=<path>` measures another build of the `pool-master`
//! binary.
//!
//! Both sides share the machine's cores (2 on the reference machine): the
//! clients' own CPU use limits the query rate measured here.

#![allow(missing_docs)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Buf, BytesMut};
use pool_proto::codec::{decode_exact, encode_frame};
use pool_proto::handshake::{Cookie, HandshakeConfig, Identity, initiate};
use pool_proto::{
    Join, LoadReport, MAX_FRAME_LEN, Msg, NodeId, NodeInfo, NodeKind, PlaceQuery, Request, Response,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

const COOKIE: &str = "capacity-bench-cookie";
const REPORT_INTERVAL: Duration = Duration::from_millis(500);

/// Kills the master when the bench ends, however it ends.
struct Master {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Master {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Master {
    fn start() -> Master {
        let dir = tempfile::tempdir().unwrap();
        // `CAPACITY_MASTER`: another build of the master to measure (to
        // compare two versions with one bench).
        let bin = std::env::var("CAPACITY_MASTER")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_pool-master").to_owned());
        let mut child = Command::new(bin)
            .args(["--listen", "127.0.0.1:0", "--http", "off"])
            // The simulated nodes share two cores with the master and go
            // through an O(n²) ramp-up of membership pushes: a generous
            // timeout keeps a starved simulation from being declared down
            // meanwhile. The steady state checks every node's report age.
            .args(["--node-timeout", "30s"])
            .arg("--state-dir")
            .arg(dir.path())
            .env("POOL_COOKIE", COOKIE)
            .env("POOL_LOG_JSON", "1")
            .env("RUST_LOG", "warn,pool_master::master=info")
            .stderr(Stdio::piped())
            .spawn()
            .expect("the pool-master binary runs");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let v: serde_json::Value = match serde_json::from_str(&line) {
                    Ok(v) => v,
                    Err(_) => continue,
                };
                if v["fields"]["message"] == "pool-master listening" {
                    let _ = tx.send(v["fields"]["addr"].as_str().unwrap().to_owned());
                } else if v["level"] == "WARN" || v["level"] == "ERROR" {
                    eprintln!("master: {line}");
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the master says where it listens")
            .parse()
            .unwrap();
        Master {
            child,
            addr,
            _dir: dir,
        }
    }

    /// CPU seconds (user + system) the master used so far.
    fn cpu_secs(&self) -> f64 {
        cpu_secs(&format!("/proc/{}/stat", self.child.id()))
    }
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn cpu_secs(stat: &str) -> f64 {
    let text = std::fs::read_to_string(Path::new(stat)).unwrap();
    // Fields after the command name (which is in parentheses).
    let rest = &text[text.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / clock_ticks()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn frame(msg: &Msg) -> BytesMut {
    let mut b = BytesMut::new();
    encode_frame(msg, &mut b, MAX_FRAME_LEN).unwrap();
    b
}

/// Connects, handshakes and joins; returns the halves after the Welcome.
async fn join(addr: SocketAddr, name: String, kind: NodeKind) -> (OwnedReadHalf, OwnedWriteHalf) {
    let (rd, wr, _) = try_join(addr, name, kind).await.expect("join");
    (rd, wr)
}

/// [`join`], with the failure as text; also returns the bytes of the
/// Welcome frame.
async fn try_join(
    addr: SocketAddr,
    name: String,
    kind: NodeKind,
) -> Result<(OwnedReadHalf, OwnedWriteHalf, usize), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let stream = TcpStream::connect(addr).await.map_err(|x| e(&x))?;
    stream.set_nodelay(true).map_err(|x| e(&x))?;
    let me = Identity {
        node: NodeId::random(),
        name: name.clone(),
        kind,
    };
    let cookie = Cookie::new(COOKIE, "bench").unwrap();
    let (conn, _) = initiate(stream, &me, &cookie, &HandshakeConfig::default())
        .await
        .map_err(|x| e(&x))?;
    let (mut rd, mut wr) = conn.into_inner().into_split();
    let join = Msg::Request {
        id: 0,
        body: Request::Join(Join {
            info: NodeInfo {
                id: me.node,
                name,
                addr: if kind == NodeKind::Worker {
                    "127.0.0.1:1".into()
                } else {
                    String::new()
                },
                kind,
                capacity: 1,
                labels: Default::default(),
            },
            functions: vec![],
            names: vec![],
            apps: vec![],
            rejoin: false,
            wasm: false,
        }),
    };
    wr.write_all(&frame(&join)).await.map_err(|x| e(&x))?;
    // The Welcome is the first frame the master sends.
    let len = rd.read_u32().await.map_err(|x| e(&x))? as usize;
    // Decoding a Welcome of 10,000 members costs the simulated node
    // milliseconds; ten thousand of them would starve the simulation, so
    // only its start is checked: {"Response": {"id": 0, "body": {"Welcome":
    let mut start = vec![0u8; len.min(64)];
    rd.read_exact(&mut start).await.map_err(|x| e(&x))?;
    if !start.windows(8).any(|w| w == b"\xa7Welcome") {
        let mut body = start;
        body.resize(len, 0);
        rd.read_exact(&mut body[64.min(len)..])
            .await
            .map_err(|x| e(&x))?;
        return Err(format!("not welcomed: {:?}", decode_exact::<Msg>(&body)));
    }
    // The rest is read (every byte crosses the socket, as for a real
    // node) into the thread's scratch buffer, not into 400 kB of its own.
    let mut left = len - start.len();
    while left > 0 {
        match read_discard(&rd, left).await.map_err(|x| e(&x))? {
            0 => return Err("the master closed during the Welcome".into()),
            n => left -= n,
        }
    }
    Ok((rd, wr, 4 + len))
}

thread_local! {
    /// Where the simulated nodes of one bench thread read what they do not
    /// keep: one buffer per thread rather than one per node (10,000 of
    /// 256 kB each, faulted in page by page as the deltas arrive, were a
    /// cost of the simulation, not of the master).
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 256 * 1024]);
}

/// Reads at most `max` bytes of what `rd` has into the thread's scratch
/// buffer and drops them; 0 at the end of the stream.
async fn read_discard(rd: &OwnedReadHalf, max: usize) -> std::io::Result<usize> {
    loop {
        rd.readable().await?;
        let res = SCRATCH.with(|b| {
            let mut b = b.borrow_mut();
            let n = max.min(b.len());
            rd.try_read(&mut b[..n])
        });
        match res {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            res => return res,
        }
    }
}

/// A lightweight worker: reports every interval, discards what it reads.
async fn reporter(
    addr: SocketAddr,
    i: usize,
    joining: Arc<tokio::sync::Semaphore>,
    joined: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    read_bytes: Arc<AtomicU64>,
) {
    // A bounded number of joins at a time, each retried a few times.
    let permit = joining.acquire_owned().await.unwrap();
    let mut attempt = 0;
    let (rd, mut wr) = loop {
        match try_join(addr, format!("n{i}"), NodeKind::Worker).await {
            Ok((rd, wr, welcome)) => {
                read_bytes.fetch_add(welcome as u64, Ordering::Relaxed);
                break (rd, wr);
            }
            Err(e) if attempt < 5 => {
                attempt += 1;
                if attempt == 1 {
                    eprintln!("join of n{i} failed ({e}); retrying");
                }
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(e) => {
                eprintln!("join of n{i} failed for good: {e}");
                failed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    };
    drop(permit);
    joined.fetch_add(1, Ordering::Relaxed);
    // Spread the phases over the interval.
    let phase = REPORT_INTERVAL.mul_f64(rand::random::<f64>());
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + phase, REPORT_INTERVAL);
    let mut seq = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                seq += 1;
                let r = Msg::LoadReport(LoadReport {
                    seq,
                    sent_at_ms: now_ms(),
                    run_queue: (seq % 3) as u32,
                    processes: 10,
                    capacity: 1,
                    mem_total: 1 << 30,
                    mem_used: 1 << 29,
                    ..LoadReport::default()
                });
                if wr.write_all(&frame(&r)).await.is_err() {
                    return;
                }
            }
            n = read_discard(&rd, usize::MAX) => match n {
                Ok(0) | Err(_) => return,
                Ok(n) => { read_bytes.fetch_add(n as u64, Ordering::Relaxed); }
            },
        }
    }
}

/// Asks the master for the live nodes (as a hidden node).
async fn list_nodes(addr: SocketAddr) -> Vec<pool_proto::NodeStatus> {
    let (mut rd, mut wr) = join(addr, "ctl".into(), NodeKind::Hidden).await;
    wr.write_all(&frame(&Msg::Request {
        id: 1,
        body: Request::ListNodes,
    }))
    .await
    .unwrap();
    loop {
        let len = rd.read_u32().await.unwrap() as usize;
        let mut body = vec![0u8; len];
        rd.read_exact(&mut body).await.unwrap();
        if let Ok(Msg::Response {
            id: 1,
            body: Response::Nodes(n),
        }) = decode_exact::<Msg>(&body)
        {
            return n;
        }
    }
}

async fn bench_reports(nodes: usize, secs: u64) {
    println!("== reports: {nodes} nodes reporting every {REPORT_INTERVAL:?} ==");
    let master = Master::start();
    let joined = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let read_bytes = Arc::new(AtomicU64::new(0));
    // Joins in flight at once: enough to keep the master busy, few enough
    // that the listen backlog and the handshake timeout are never hit.
    let joining = Arc::new(tokio::sync::Semaphore::new(64));
    let t0 = Instant::now();
    let cpu0 = master.cpu_secs();
    let handles: Vec<_> = (0..nodes)
        .map(|i| {
            tokio::spawn(reporter(
                master.addr,
                i,
                joining.clone(),
                joined.clone(),
                failed.clone(),
                read_bytes.clone(),
            ))
        })
        .collect();
    let mut shown = 0;
    while joined.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < nodes {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let j = joined.load(Ordering::Relaxed);
        if j >= shown + nodes / 10 {
            shown = j;
            eprintln!("  {j} joined after {:.1} s", t0.elapsed().as_secs_f64());
        }
    }
    let nodes = joined.load(Ordering::Relaxed);
    if failed.load(Ordering::Relaxed) > 0 {
        println!("{} joins failed", failed.load(Ordering::Relaxed));
    }
    let ramp = t0.elapsed();
    let ramp_cpu = master.cpu_secs() - cpu0;
    // Let the membership pushes of the ramp-up drain: settled when less
    // than 1 MB arrives in a second (that last second not counted).
    let mut last = read_bytes.load(Ordering::Relaxed);
    let mut settled = ramp;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = read_bytes.load(Ordering::Relaxed);
        if now - last < 1_000_000 {
            break;
        }
        settled = t0.elapsed();
        last = now;
    }
    let read = read_bytes.load(Ordering::Relaxed) as f64;
    println!(
        "ramp-up: {nodes} joined in {:.1} s (pushes drained by {:.1} s), master CPU {:.1} s; the nodes read {:.3} GB ({:.1} kB per node, Welcome included)",
        ramp.as_secs_f64(),
        settled.as_secs_f64(),
        ramp_cpu,
        read / 1e9,
        read / nodes.max(1) as f64 / 1e3
    );
    let (c0, w0) = (master.cpu_secs(), Instant::now());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (c1, w1) = (master.cpu_secs(), Instant::now());
    let share = (c1 - c0) / (w1 - w0).as_secs_f64();
    let live = list_nodes(master.addr).await;
    let fresh = live.iter().filter(|n| n.report_age_ms < 1500).count();
    let reports_per_sec = live.len() as f64 / REPORT_INTERVAL.as_secs_f64();
    println!(
        "steady state: master CPU {:.1} % of one core over {secs} s ({:.0} reports/s, {:.2} µs of master CPU per report)",
        share * 100.0,
        reports_per_sec,
        share / reports_per_sec * 1e6
    );
    println!(
        "live nodes listed: {} of {nodes}, {fresh} with a report in the last 1.5 s; target < 50 % of a core: {}",
        live.len(),
        if share < 0.5 && live.len() == nodes {
            "MET"
        } else {
            "NOT MET"
        }
    );
    for h in handles {
        h.abort();
    }
}

/// A hidden client pipelining Place queries; returns the answers counted.
async fn placer(addr: SocketAddr, k: usize, until: Instant, answered: Arc<AtomicU64>) {
    let (mut rd, mut wr) = join(addr, format!("placer{k}"), NodeKind::Hidden).await;
    const BATCH: u64 = 256;
    let batch = |base: u64| {
        let mut b = BytesMut::new();
        for id in base..base + BATCH {
            let q = Msg::Request {
                id,
                body: Request::Place(PlaceQuery {
                    count: 1,
                    commit: true,
                    ..PlaceQuery::default()
                }),
            };
            encode_frame(&q, &mut b, MAX_FRAME_LEN).unwrap();
        }
        b.freeze()
    };
    let (a, b) = (batch(1), batch(1 + BATCH));
    wr.write_all(&a).await.unwrap();
    wr.write_all(&b).await.unwrap();
    let mut buf = BytesMut::with_capacity(256 * 1024);
    let mut in_batch = 0u64;
    let mut next_is_a = true;
    let mut checked = false;
    loop {
        if rd.read_buf(&mut buf).await.unwrap_or(0) == 0 {
            return;
        }
        // Count whole frames.
        while buf.len() >= 4 {
            let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            if buf.len() < 4 + len {
                break;
            }
            // Membership pushes (other clients joining) are not answers:
            // an answer's body starts as the map {"Response": ...}.
            if !buf[4..4 + len].starts_with(b"\x81\xa8Response") {
                buf.advance(4 + len);
                continue;
            }
            if !checked {
                let msg: Msg = decode_exact(&buf[4..4 + len]).unwrap();
                assert!(
                    matches!(
                        msg,
                        Msg::Response {
                            body: Response::Placed(_),
                            ..
                        }
                    ),
                    "{msg:?}"
                );
                checked = true;
            }
            buf.advance(4 + len);
            in_batch += 1;
            answered.fetch_add(1, Ordering::Relaxed);
            if in_batch == BATCH {
                in_batch = 0;
                if Instant::now() >= until {
                    return;
                }
                // The batch answered is free again: send it anew.
                let again = if next_is_a { &a } else { &b };
                next_is_a = !next_is_a;
                if wr.write_all(again).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn bench_placement(secs: u64) {
    println!("== placement queries over the wire: 8 idle workers, 4 pipelining clients ==");
    let master = Master::start();
    let joined = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let sink = Arc::new(AtomicU64::new(0));
    let joining = Arc::new(tokio::sync::Semaphore::new(8));
    let workers: Vec<_> = (0..8)
        .map(|i| {
            tokio::spawn(reporter(
                master.addr,
                i,
                joining.clone(),
                joined.clone(),
                failed.clone(),
                sink.clone(),
            ))
        })
        .collect();
    while joined.load(Ordering::Relaxed) < 8 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let answered = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let until = start + Duration::from_secs(secs);
    let c0 = master.cpu_secs();
    let clients: Vec<_> = (0..4)
        .map(|k| tokio::spawn(placer(master.addr, k, until, answered.clone())))
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = master.cpu_secs() - c0;
    let n = answered.load(Ordering::Relaxed) as f64;
    println!(
        "{:.0} placement answers/s ({} in {:.1} s); master CPU {:.0} % of one core, {:.2} µs per answer; target >= 200 k/s: {}",
        n / wall,
        n as u64,
        wall,
        cpu / wall * 100.0,
        cpu / n * 1e6,
        if n / wall >= 200_000.0 {
            "MET"
        } else {
            "NOT MET"
        }
    );
    for w in workers {
        w.abort();
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing
    // useful: run only when benchmarking.
    if !std::env::args().any(|a| a == "--bench") {
        println!("capacity: run with `cargo bench -p pool-master --bench capacity`");
        return;
    }
    let nodes: usize = std::env::var("CAPACITY_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let secs: u64 = std::env::var("CAPACITY_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let only = std::env::var("CAPACITY_ONLY").unwrap_or_default();
    rt.block_on(async {
        if only != "reports" {
            bench_placement(secs).await;
        }
        if only != "placement" {
            bench_reports(nodes, secs).await;
        }
    });
}
