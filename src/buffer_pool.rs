//! Record buffers kept for reuse: when the last handle to a superseded record
//! drops, its serialized bytes come here instead of going back to the
//! allocator, and the next `put` serializes into them.
//!
//! Why: a put serializes ~100 KB on the caller's thread, and the record is
//! usually freed on another thread (the shard executor that advanced the
//! epoch). glibc hands such frees back to the allocating thread's arena and
//! trims the arenas' tops with `MADV_DONTNEED`, so a fresh buffer was mostly
//! new pages: the seed workload took about 1.5 page faults per put (146,000
//! in a run of 96,000 puts, 86 % of them in serialization), and its peak
//! RSS was 14 MB above a run limited to 2 arenas. A buffer taken from here
//! is already resident.
//!
//! Bounded twice, so it never holds more than a small, fixed amount: at most
//! [`SLOTS`] buffers (a lock-free bag with no overflow storage) and at most
//! `max_bytes` of capacity in total. Buffers larger than a quarter of the
//! bound are never kept.

use std::sync::atomic::{AtomicUsize, Ordering};

use rkyv::util::AlignedVec;

/// Most buffers kept at once: the size of the bag's inline array, the
/// largest `scc::Bag` allows.
pub(crate) const SLOTS: usize = 32;

/// A pooled buffer is handed out only for records needing at least
/// 1 / `MAX_SLACK` of its capacity.
pub(crate) const MAX_SLACK: usize = 2;

/// A bounded, lock-free pool of serialization buffers.
#[derive(Debug)]
pub(crate) struct BufferPool {
    free: scc::Bag<AlignedVec<16>, SLOTS>,
    /// Capacity of the buffers in `free`, bytes.
    pooled_bytes: AtomicUsize,
    max_bytes: usize,
}

impl BufferPool {
    /// A pool holding at most `max_bytes` of buffer capacity (0: keep none).
    pub(crate) fn new(max_bytes: usize) -> Self {
        BufferPool {
            free: scc::Bag::new(),
            pooled_bytes: AtomicUsize::new(0),
            max_bytes,
        }
    }

    /// An empty buffer of at least `capacity` bytes: the first one popped
    /// if it fits, else a new allocation (the misfit is freed).
    ///
    /// A buffer fits if it is at most [`MAX_SLACK`] times `capacity`: the
    /// record keeps its buffer for as long as it lives, so a small record
    /// must not pin a big one (a mix of 2 MiB and 1 KiB records could
    /// otherwise hold 2 MiB per small live record).
    pub(crate) fn take(&self, capacity: usize) -> AlignedVec<16> {
        if let Some(mut buffer) = self.free.pop() {
            self.pooled_bytes
                .fetch_sub(buffer.capacity(), Ordering::Relaxed);
            let fits = capacity..=capacity.saturating_mul(MAX_SLACK);
            if fits.contains(&buffer.capacity()) {
                buffer.clear();
                return buffer;
            }
        }
        AlignedVec::with_capacity(capacity)
    }

    /// Keeps `buffer` for a later `take` if the bounds allow, else frees it.
    pub(crate) fn give(&self, buffer: AlignedVec<16>) {
        let size = buffer.capacity();
        if size == 0 || size > self.max_bytes / 4 {
            return;
        }
        let reserved = self
            .pooled_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |pooled| {
                pooled
                    .checked_add(size)
                    .filter(|&total| total <= self.max_bytes)
            })
            .is_ok();
        if reserved && self.free.try_push(buffer).is_err() {
            self.pooled_bytes.fetch_sub(size, Ordering::Relaxed);
        }
    }

    /// Capacity of the buffers held, bytes.
    #[cfg(test)]
    fn pooled_bytes(&self) -> usize {
        self.pooled_bytes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(capacity: usize) -> AlignedVec<16> {
        let mut b = AlignedVec::<16>::with_capacity(capacity);
        b.extend_from_slice(&vec![7u8; capacity.min(100)]);
        b
    }

    /// Regression: this test once asked for 1000 bytes, which the slack rule
    /// refuses for a 4096-byte buffer; it passed only when the allocator
    /// happened to return the freed chunk at the same address.
    #[test]
    fn a_returned_buffer_is_reused_empty() {
        let pool = BufferPool::new(1 << 20);
        let b = filled(4096);
        let ptr = b.as_ptr();
        pool.give(b);
        assert_eq!(pool.pooled_bytes(), 4096);
        // Within the slack: 4096 <= 2 * 3000. A fresh allocation would have
        // capacity 3000 (and could reuse the freed address by chance), so
        // the capacity is what proves reuse.
        let again = pool.take(3000);
        assert_eq!(again.capacity(), 4096, "the pooled buffer, not a new one");
        assert_eq!(again.as_ptr(), ptr, "the same allocation");
        assert!(again.is_empty());
        assert_eq!(pool.pooled_bytes(), 0);
    }

    #[test]
    fn a_buffer_too_small_is_not_handed_out() {
        let pool = BufferPool::new(1 << 20);
        pool.give(filled(4096));
        let b = pool.take(8192);
        assert!(b.capacity() >= 8192);
        assert_eq!(pool.pooled_bytes(), 0, "the small one was dropped");
    }

    #[test]
    fn a_buffer_far_too_big_is_not_handed_out() {
        let pool = BufferPool::new(1 << 20);
        pool.give(filled(4096 * MAX_SLACK + 16));
        let b = pool.take(4096);
        assert!(b.capacity() < 4096 * MAX_SLACK, "{}", b.capacity());
        assert_eq!(pool.pooled_bytes(), 0, "the big one was freed");

        pool.give(filled(4096 * MAX_SLACK));
        let b = pool.take(4096);
        assert_eq!(b.capacity(), 4096 * MAX_SLACK, "just within the slack");
    }

    #[test]
    fn bounded_by_bytes_and_by_slots() {
        let pool = BufferPool::new(10 * 4096);
        for _ in 0..20 {
            pool.give(filled(4096));
        }
        assert_eq!(pool.pooled_bytes(), 10 * 4096);

        let pool = BufferPool::new(1 << 30);
        for _ in 0..SLOTS + 5 {
            pool.give(filled(4096));
        }
        assert_eq!(pool.pooled_bytes(), SLOTS * 4096);
        let mut taken = 0;
        while pool.pooled_bytes() > 0 {
            let _ = pool.take(1);
            taken += 1;
        }
        assert_eq!(taken, SLOTS);
    }

    #[test]
    fn big_buffers_and_a_zero_bound_keep_nothing() {
        let pool = BufferPool::new(16 * 4096);
        pool.give(filled(5 * 4096));
        assert_eq!(pool.pooled_bytes(), 0);
        let pool = BufferPool::new(0);
        pool.give(filled(64));
        assert_eq!(pool.pooled_bytes(), 0);
    }
}
