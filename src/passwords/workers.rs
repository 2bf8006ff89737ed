//! The argon2 workers: a fixed set of OS threads, each owning the memory one hash needs and
//! reusing it, running at a lower CPU priority than the threads that serve requests.
//!
//! Why not tokio's blocking pool: its threads come and go (up to 512), and each one that ran a
//! hash kept its ~19 MiB in its own glibc arena, so a login storm grew the process by hundreds
//! of MiB that were never returned (349 MiB measured, docs/performance.md). And at the same
//! priority as the request threads a storm took half of a one-core server from the token
//! endpoint. Here memory is `workers × memory per hash`, allocated on first use and reused, and
//! a hash only gets the CPU that requests leave (`passwords.nice`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use argon2::Block;

/// One hash or verification, given the worker's memory.
pub type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// A worker's argon2 memory, kept between jobs.
#[derive(Default)]
pub struct Memory {
    blocks: Vec<Block>,
}

impl Memory {
    /// `count` blocks: the memory is grown when a job needs more than any before (a stored
    /// hash made with stronger parameters), and kept.
    pub fn blocks(&mut self, count: usize) -> &mut [Block] {
        if self.blocks.len() < count {
            self.blocks.resize(count, Block::default());
        }
        &mut self.blocks[..count]
    }
}

pub struct Workers {
    jobs: SyncSender<Job>,
}

impl Workers {
    /// Start `count` threads at niceness `nice` (0 leaves their priority alone). They end when
    /// the `Workers` is dropped.
    pub fn start(count: usize, nice: i32) -> std::io::Result<Self> {
        // Callers hold one of `count` permits per job, so the queue never holds more.
        let (jobs, queue) = mpsc::sync_channel::<Job>(count);
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..count {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || work(&queue, nice))?;
        }
        Ok(Self { jobs })
    }

    pub fn submit(&self, job: Job) -> Result<(), String> {
        self.jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => "every argon2 worker is busy".to_string(),
            TrySendError::Disconnected(_) => "the argon2 workers have stopped".to_string(),
        })
    }
}

fn work(queue: &Mutex<Receiver<Job>>, nice: i32) {
    lower_priority(nice);
    let mut memory = Memory::default();
    loop {
        // One idle worker waits on the queue at a time; the lock is released before the job runs.
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else {
            return; // the hasher was dropped
        };
        // A panicking job drops its result sender (its caller sees an error); the worker stays.
        if catch_unwind(AssertUnwindSafe(|| job(&mut memory))).is_err() {
            memory = Memory::default();
        }
    }
}

/// Linux scheduling priority is per thread: `setpriority(PRIO_PROCESS, tid)` renices this
/// thread only. `nice` is added to the niceness the thread started with (the process's: an
/// operator who starts the server under `nice` keeps the workers below it), up to 19; lowering
/// a priority needs no privilege.
#[cfg(target_os = "linux")]
fn lower_priority(nice: i32) {
    if nice == 0 {
        return;
    }
    // SAFETY: plain system calls on this thread's own id, no pointers. getpriority returns -1
    // both for niceness -1 and for an error; errno tells them apart, but either way the
    // setpriority below is at worst refused and logged.
    let result = unsafe {
        let tid = libc::gettid() as libc::id_t;
        let current = libc::getpriority(libc::PRIO_PROCESS, tid);
        libc::setpriority(libc::PRIO_PROCESS, tid, (current + nice).min(19))
    };
    if result != 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            nice,
            "cannot lower the argon2 workers' priority"
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_nice: i32) {}

/// This thread's niceness, for tests.
#[cfg(all(test, target_os = "linux"))]
pub fn current_nice() -> i32 {
    // SAFETY: as above.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_on_lowered_threads_that_keep_their_memory() {
        let workers = Workers::start(1, 7).expect("start");
        let (tx, rx) = mpsc::channel();
        // One at a time: the queue holds as many jobs as there are workers (callers hold permits).
        let run_one = || {
            let tx = tx.clone();
            workers
                .submit(Box::new(move |memory: &mut Memory| {
                    let address = memory.blocks(16).as_ptr() as usize;
                    #[cfg(target_os = "linux")]
                    let nice = current_nice();
                    #[cfg(not(target_os = "linux"))]
                    let nice = 7;
                    tx.send((address, nice)).expect("send");
                }))
                .expect("submit");
            rx.recv().expect("result")
        };
        let first = run_one();
        let second = run_one();
        assert_eq!(first.1, 7, "the worker runs at the configured niceness");
        assert_eq!(first.0, second.0, "the memory is reused, not reallocated");
    }

    #[test]
    fn a_panicking_job_leaves_the_worker_running() {
        let workers = Workers::start(1, 0).expect("start");
        workers
            .submit(Box::new(|_: &mut Memory| panic!("boom")))
            .expect("submit");
        let (tx, rx) = mpsc::channel();
        // The queue holds one job; wait for the panicking one to be taken.
        let mut job: Job = Box::new(move |_: &mut Memory| tx.send(()).expect("send"));
        loop {
            match workers.jobs.try_send(job) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) => {
                    job = back;
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(e) => panic!("{e}"),
            }
        }
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("the worker survived the panic");
    }
}
