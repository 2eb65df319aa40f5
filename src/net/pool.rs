//! A small capped pool of byte buffers, so an idle or parked connection holds no read or write
//! buffer while a busy one reuses warm allocations instead of growing fresh ones.

/// Capped free list of `Vec<u8>`.
#[derive(Debug)]
pub struct BufPool {
    free: Vec<Vec<u8>>,
    max_pooled: usize,
    buf_capacity: usize,
    /// Buffers grown beyond this are dropped rather than pooled, so one large response does not
    /// pin memory forever.
    max_keep: usize,
}

impl BufPool {
    /// A pool keeping up to `max_pooled` buffers of initial capacity `buf_capacity`.
    pub fn new(max_pooled: usize, buf_capacity: usize) -> Self {
        Self {
            free: Vec::new(),
            max_pooled,
            buf_capacity,
            max_keep: buf_capacity * 4,
        }
    }

    /// An empty buffer, warm from the pool when one is available.
    pub fn take(&mut self) -> Vec<u8> {
        self.free
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.buf_capacity))
    }

    /// Returns a buffer; its contents are discarded.
    pub fn give(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() == 0
            || buf.capacity() > self.max_keep
            || self.free.len() >= self.max_pooled
        {
            return;
        }
        buf.clear();
        self.free.push(buf);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_and_caps() {
        let mut p = BufPool::new(2, 16);
        let a = p.take();
        let b = p.take();
        let c = p.take();
        p.give(a);
        p.give(b);
        p.give(c);
        assert_eq!(p.len(), 2);
        let mut big = p.take();
        big.resize(1000, 0);
        p.give(big);
        assert_eq!(p.len(), 1, "oversized buffers are dropped");
        p.give(Vec::new());
        assert_eq!(p.len(), 1, "capacity-less vectors are not pooled");
    }
}
