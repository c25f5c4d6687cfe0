//! Deadlines a worker publishes for the server's watchdog, in memory both processes map:
//! no message per call, and still readable when the worker is frozen in a C loop.

#![allow(unsafe_code)] // a shared memory mapping: mmap, munmap, raw slots.

use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};

/// One snippet thread of a worker, as the watchdog sees it.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Slot {
    /// The job the thread runs (0: none).
    pub job: AtomicU64,
    /// When the running snippet's time is up, in `monotonic_nanos` (0: no snippet runs).
    pub deadline: AtomicU64,
    /// The running snippet's kind: 1 authenticator, 2 webhook (0: none).
    pub kind: AtomicU64,
    /// When the thread took its job, in `monotonic_nanos`.
    pub started: AtomicU64,
}

impl Slot {
    pub fn clear(&self) {
        self.deadline.store(0, Ordering::Release);
        self.kind.store(0, Ordering::Release);
        self.job.store(0, Ordering::Release);
    }
}

/// The slots of one worker, in a memory file the server creates and the worker inherits.
pub struct Slots {
    memory: NonNull<Slot>,
    count: usize,
    file: OwnedFd,
}

// SAFETY: the mapping holds only atomics, which any thread may read and write.
unsafe impl Send for Slots {}
// SAFETY: as above: every access goes through `AtomicU64`.
unsafe impl Sync for Slots {}

impl Slots {
    /// A fresh memory file of `count` zeroed slots (server side).
    pub fn create(count: usize) -> io::Result<Self> {
        let file = nix::sys::memfd::memfd_create(
            c"towerhook-slots",
            nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
        )?;
        nix::unistd::ftruncate(&file, bytes(count) as i64)?;
        Self::map(file, count)
    }

    /// The worker's view of the server's memory file.
    pub fn open(file: OwnedFd, count: usize) -> io::Result<Self> {
        Self::map(file, count)
    }

    fn map(file: OwnedFd, count: usize) -> io::Result<Self> {
        let length = NonZeroUsize::new(bytes(count)).ok_or(io::ErrorKind::InvalidInput)?;
        // SAFETY: a fresh shared mapping of a file this value owns, as long as the file is
        // (`ftruncate` above); unmapped only in `drop`. Nothing else in this process maps it.
        let memory = unsafe {
            mmap(
                None,
                length,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                &file,
                0,
            )?
        };
        Ok(Self {
            memory: memory.cast(),
            count,
            file,
        })
    }

    pub fn get(&self, index: usize) -> &Slot {
        assert!(index < self.count, "slot {index} of {}", self.count);
        // SAFETY: the mapping holds `count` slots, zero-initialized (a valid `Slot`), and
        // lives as long as `self`.
        unsafe { &*self.memory.as_ptr().add(index) }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Slot> {
        (0..self.count).map(|index| self.get(index))
    }

    pub fn file(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, of this length; no reference outlives `self`.
        let _ = unsafe { munmap(self.memory.cast(), bytes(self.count)) };
    }
}

fn bytes(count: usize) -> usize {
    count.max(1) * std::mem::size_of::<Slot>()
}

/// CLOCK_MONOTONIC in nanoseconds: the same clock in every process of the machine.
pub fn monotonic_nanos() -> u64 {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always there");
    now.tv_sec() as u64 * 1_000_000_000 + now.tv_nsec() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_mappings_of_one_file_see_each_other() {
        let server = Slots::create(2).unwrap();
        let worker = Slots::open(server.file().try_clone_to_owned().unwrap(), 2).unwrap();
        worker.get(1).deadline.store(42, Ordering::Release);
        assert_eq!(server.get(1).deadline.load(Ordering::Acquire), 42);
        assert_eq!(server.get(0).deadline.load(Ordering::Acquire), 0);
        assert!(monotonic_nanos() > 0);
    }
}
