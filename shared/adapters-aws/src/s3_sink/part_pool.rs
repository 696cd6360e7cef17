//! Part buffers for one upload, reused: the same `max_in_flight + 1` buffers carry a whole file
//! instead of one fresh allocation per part (see the parent module on why that matters).

use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// Part buffers for one upload, reused: a full part is sent as a [`Bytes`] that owns its buffer
/// and puts it back here when the request has dropped it. Keeps at most `keep` idle buffers.
#[derive(Clone)]
pub(super) struct PartPool {
    idle: Arc<Mutex<Vec<Vec<u8>>>>,
    capacity: usize,
    keep: usize,
}

impl PartPool {
    pub(super) fn new(capacity: usize, keep: usize) -> Self {
        Self {
            idle: Arc::new(Mutex::new(Vec::with_capacity(keep))),
            capacity,
            keep,
        }
    }

    /// An empty buffer of `capacity` bytes, reused when one is idle.
    pub(super) fn take(&self) -> Vec<u8> {
        let reused = self.idle.lock().expect("pool lock").pop();
        reused.unwrap_or_else(|| Vec::with_capacity(self.capacity))
    }

    /// The filled buffer as a part body that returns to the pool when dropped.
    pub(super) fn seal(&self, buffer: Vec<u8>) -> Bytes {
        Bytes::from_owner(PooledPart {
            buffer,
            pool: self.clone(),
        })
    }

    fn give_back(&self, mut buffer: Vec<u8>) {
        buffer.clear();
        let mut idle = self.idle.lock().expect("pool lock");
        if idle.len() < self.keep && buffer.capacity() >= self.capacity {
            idle.push(buffer);
        }
    }
}

struct PooledPart {
    buffer: Vec<u8>,
    pool: PartPool,
}

impl AsRef<[u8]> for PooledPart {
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

impl Drop for PooledPart {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buffer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_buffers_go_back_to_the_pool_and_are_reused() {
        let pool = PartPool::new(1024, 2);
        let mut first = pool.take();
        first.extend_from_slice(&[7; 1024]);
        let address = first.as_ptr();
        let body = pool.seal(first);
        assert_eq!(&body[..], &[7; 1024][..]);
        let clone = body.clone();
        drop(body);
        assert!(pool.idle.lock().unwrap().is_empty(), "still referenced");
        drop(clone);
        let again = pool.take();
        assert_eq!(again.as_ptr(), address, "the same buffer, reused");
        assert!(again.is_empty() && again.capacity() >= 1024);
        // At most `keep` idle buffers are kept.
        let parts: Vec<Bytes> = (0..4).map(|_| pool.seal(pool.take())).collect();
        drop(parts);
        assert_eq!(pool.idle.lock().unwrap().len(), 2);
    }
}
