//! Load sampling for reports: cheap by construction (DEPS.md measured about
//! 0.2 ms per sample with these narrowed refreshes; at 2 Hz that is about
//! 0.04 % of a core).
//!
//! The placement score comes from the node's own signals: its runnable
//! processes (from the runtime) and the time its process threads were busy
//! (tokio's per-worker busy duration). Machine CPU and memory are reported
//! for display and memory-pressure refusal.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pool_proto::LoadReport;
use supervisor::Runtime;
use sysinfo::{
    CpuRefreshKind, MemoryRefreshKind, Pid as SysPid, ProcessRefreshKind, ProcessesToUpdate,
    RefreshKind, System,
};
use tokio::runtime::Handle;

/// Samples the machine, this OS process and the process runtime.
#[derive(Debug)]
pub(crate) struct LoadSampler {
    /// The machine's CPU and memory (`None` where sysinfo cannot read them).
    sys: Option<System>,
    /// This OS process, for its own CPU and memory.
    me: Option<SysPid>,
    /// The process runtime, whose workers' busy time is the load signal.
    proc_rt: Handle,
    /// Busy time at the previous sample.
    last_busy: Duration,
    /// When the previous sample was taken.
    last_at: Instant,
    /// The last report's sequence number.
    seq: u64,
}

impl LoadSampler {
    pub(crate) fn new(proc_rt: Handle) -> Self {
        let sys = System::new_with_specifics(RefreshKind::nothing()).ok();
        let me = sysinfo::get_current_pid().ok();
        let mut s = LoadSampler {
            sys,
            me,
            proc_rt,
            last_busy: Duration::ZERO,
            last_at: Instant::now(),
            seq: 0,
        };
        s.last_busy = s.busy_total();
        s
    }

    /// Total time the process runtime's threads have been busy.
    fn busy_total(&self) -> Duration {
        let m = self.proc_rt.metrics();
        (0..m.num_workers())
            .map(|w| m.worker_total_busy_duration(w))
            .sum()
    }

    /// One report.
    pub(crate) fn sample(&mut self, rt: &Runtime, capacity: u32) -> LoadReport {
        self.seq += 1;
        let now = Instant::now();
        let busy = self.busy_total();
        let elapsed = now.duration_since(self.last_at).as_secs_f64().max(1e-3);
        let busy_threads = (busy.saturating_sub(self.last_busy).as_secs_f64() / elapsed) as f32;
        self.last_busy = busy;
        self.last_at = now;

        let mut report = LoadReport {
            seq: self.seq,
            sent_at_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            processes: rt.process_count() as u64,
            run_queue: rt.run_queue() as u32,
            busy_threads,
            capacity,
            spawns_received: rt.spawns_received(),
            outcomes: rt.outcomes(),
            ..LoadReport::default()
        };
        if let Some(sys) = self.sys.as_mut() {
            sys.refresh_cpu_specifics(CpuRefreshKind::nothing().with_usage());
            sys.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
            report.cpu_percent = sys.global_cpu_usage();
            report.mem_used = sys.used_memory();
            report.mem_total = sys.total_memory();
            if let Some(me) = self.me {
                sys.refresh_processes_specifics(
                    ProcessesToUpdate::Some(&[me]),
                    false,
                    ProcessRefreshKind::nothing().with_cpu().with_memory(),
                );
                if let Some(p) = sys.process(me) {
                    report.self_cpu_percent = p.cpu_usage();
                    report.self_rss = p.memory();
                }
            }
            if let Ok(la) = System::load_average() {
                report.load_avg = [la.one as f32, la.five as f32, la.fifteen as f32];
            }
        }
        report
    }
}
