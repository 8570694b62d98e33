//! Encode and decode rate of the hot-path frame, a `Msg::Send` to a pid from
//! a pid (`MsgKind::Plain`), through `Codec<Msg>`, with a 32-byte and a
//! 1 KiB payload. Criterion reports throughput in frames ("elem/s").
//!
//! - encode: `encode_into` of `FRAMES` frames into one reused `BytesMut`;
//! - decode: `decode` of `FRAMES` frames from a buffer holding them all, as
//!   after a large read.
//!
//! Time is the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), so
//! the figures are "frames per second on one core" even on a busy 2-core
//! machine; groups `encode_cpu` and `decode_cpu`. With `CODEC_BENCH_WALL=1`
//! it measures wall-clock time instead (groups `encode_wall`, `decode_wall`),
//! which agrees on an idle machine.
//!
//! Run: `cargo bench -p pool-proto --bench codec` (CI only builds it:
//! `cargo bench --no-run`).

use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BatchSize, Criterion, Throughput};
use pool_proto::{Codec, Dest, Msg, MsgKind, NodeId, Payload, Pid, SendMsg};
use tokio_util::codec::Decoder;

/// Frames per iteration: enough that per-iteration overhead vanishes, few
/// enough that the 1 KiB buffer stays in cache.
const FRAMES: usize = 1000;

/// The two payload sizes: a small message and a larger one.
const SIZES: [(&str, usize); 2] = [("send_32B", 32), ("send_1KiB", 1024)];

/// The frame of the benchmark: `Send` to a pid from a pid, plain, with a
/// payload of `len` bytes.
fn send(len: usize) -> Msg {
    Msg::Send(SendMsg {
        to: Dest::Pid(Pid::new(NodeId::from_u64(0x3f2a_9c1e_04d1_b2aa), 17)),
        from: Some(Pid::new(NodeId::from_u64(0x0102_0304_0506_0708), 4242)),
        kind: MsgKind::Plain,
        payload: Payload((0..len).map(|i| i as u8).collect()),
        trace: None,
    })
}

fn encode<M: Measurement>(c: &mut Criterion<M>, group: &str) {
    let mut group = c.benchmark_group(group);
    group.throughput(Throughput::Elements(FRAMES as u64));
    for (name, len) in SIZES {
        let msg = send(len);
        let codec = Codec::<Msg>::new();
        let mut buf = BytesMut::new();
        group.bench_function(name, |b| {
            b.iter(|| {
                buf.clear();
                for _ in 0..FRAMES {
                    codec
                        .encode_into(black_box(&msg), &mut buf)
                        .expect("the benchmark frame encodes");
                }
                black_box(buf.len())
            })
        });
    }
    group.finish();
}

fn decode<M: Measurement>(c: &mut Criterion<M>, group: &str) {
    let mut group = c.benchmark_group(group);
    group.throughput(Throughput::Elements(FRAMES as u64));
    for (name, len) in SIZES {
        let msg = send(len);
        let mut codec = Codec::<Msg>::new();
        let mut wire = BytesMut::new();
        for _ in 0..FRAMES {
            codec
                .encode_into(&msg, &mut wire)
                .expect("the benchmark frame encodes");
        }
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || BytesMut::from(&wire[..]),
                |buf| {
                    for _ in 0..FRAMES {
                        let frame = codec
                            .decode(buf)
                            .expect("the benchmark frame decodes")
                            .expect("the buffer holds whole frames");
                        black_box(frame);
                    }
                },
                BatchSize::SmallInput,
            )
        });
        // The decoded frame is the one encoded (checked once, untimed).
        let mut one = BytesMut::from(&wire[..]);
        assert_eq!(codec.decode(&mut one).ok().flatten(), Some(msg));
    }
    group.finish();
}

/// CPU time of the calling thread: what the benchmark itself used,
/// whatever else the machine runs.
#[derive(Debug)]
struct ThreadCpuTime;

/// The wall-clock measurement, whose time formatter `ThreadCpuTime` shares.
static WALL: WallTime = WallTime;

fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `timespec` through the pointer,
    // which points to a live, writable one.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(
        u64::try_from(ts.tv_sec).expect("CPU time is not negative"),
        u32::try_from(ts.tv_nsec).expect("nanoseconds fit"),
    )
}

impl Measurement for ThreadCpuTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        thread_cpu_time()
    }
    fn end(&self, start: Duration) -> Duration {
        thread_cpu_time().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        WALL.formatter()
    }
}

fn main() {
    if std::env::var_os("CODEC_BENCH_WALL").is_some() {
        let mut c = Criterion::default().configure_from_args();
        encode(&mut c, "encode_wall");
        decode(&mut c, "decode_wall");
        c.final_summary();
    } else {
        let mut c = Criterion::default()
            .with_measurement(ThreadCpuTime)
            .configure_from_args();
        encode(&mut c, "encode_cpu");
        decode(&mut c, "decode_cpu");
        c.final_summary();
    }
}
