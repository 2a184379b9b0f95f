//! The ring benchmarks' workloads, shared by the criterion bench (`ring.rs`)
//! and the interleaved one (`ring_paired.rs`). Each runs one producer (the
//! calling thread) and one consumer thread, both spinning, and returns the
//! time from the first write to the consumer's last read.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::hint::{black_box, spin_loop};
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::common::Mem;

/// The small record size.
pub const SMALL: usize = 64;

/// The consumer thread of the ntcomm benches: pops `records` records.
pub fn ntcomm_consumer(mem: Arc<Mem>, size: usize, records: u64) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut c = mem.consumer().unwrap();
        let mut buf = vec![0u8; size];
        let mut got = 0;
        while got < records {
            match c.try_pop(&mut buf).unwrap() {
                Some(_) => {
                    black_box(&buf);
                    got += 1;
                }
                None => spin_loop(),
            }
        }
    })
}

pub fn ntcomm(cap: u32, size: usize, records: u64, batch: u64) -> Duration {
    let mem = Arc::new(Mem::ring_page_aligned(cap, 0));
    let consumer = ntcomm_consumer(mem.clone(), size, records);
    let mut p = mem.producer().unwrap();
    let mut rec = vec![0u8; size];
    // A countdown, not `i % batch`: a 64-bit division per record would cost the
    // harness as much as a ring operation.
    let mut left = batch;
    let start = Instant::now();
    for i in 0..records {
        rec[..8].copy_from_slice(&i.to_le_bytes());
        if batch == 1 {
            while p.try_push(&rec).unwrap().is_none() {
                spin_loop();
            }
        } else {
            while !p.write(&rec).unwrap() {
                let _ = p.publish().unwrap();
                spin_loop();
            }
            left -= 1;
            if left == 0 {
                left = batch;
                let _ = p.publish().unwrap();
            }
        }
    }
    let _ = p.publish().unwrap();
    consumer.join().unwrap();
    start.elapsed()
}

/// `write_parts([sequence number, 56-byte body])` per record; `make_visible`
/// every `every` records; one `publish` at the end. A ring of variable-length
/// records, or of fixed 64 B records if `fixed`.
pub fn ntcomm_visible(records: u64, every: u64, fixed: bool) -> Duration {
    let size = if fixed { SMALL as u32 } else { 0 };
    let mem = Arc::new(Mem::ring_page_aligned(1 << 16, size));
    let consumer = ntcomm_consumer(mem.clone(), SMALL, records);
    let mut p = mem.producer().unwrap();
    let body = [0u8; SMALL - 8];
    let mut left = every;
    let start = Instant::now();
    for i in 0..records {
        let seq = i.to_le_bytes();
        while !p.write_parts(&[&seq, &body]).unwrap() {
            p.make_visible().unwrap();
            spin_loop();
        }
        left -= 1;
        if left == 0 {
            left = every;
            p.make_visible().unwrap();
        }
    }
    let _ = p.publish().unwrap();
    consumer.join().unwrap();
    start.elapsed()
}

/// The fixed 64 B ring in bulk: batches of `batch` records each way.
pub fn ntcomm_bulk(records: u64, batch: usize) -> Duration {
    let mem = Arc::new(Mem::ring_page_aligned(1 << 16, SMALL as u32));
    let m2 = mem.clone();
    let consumer = std::thread::spawn(move || {
        let mut c = m2.consumer().unwrap();
        let mut buf = vec![0u8; SMALL * batch];
        let mut got = 0u64;
        while got < records {
            let n = c.pop_records(&mut buf).unwrap();
            if n == 0 {
                spin_loop();
                continue;
            }
            for r in buf[..n * SMALL].chunks_exact(SMALL) {
                black_box(r);
            }
            got += n as u64;
        }
    });
    let mut p = mem.producer().unwrap();
    let mut recs = vec![0u8; SMALL * batch];
    let start = Instant::now();
    let mut i = 0u64;
    while i < records {
        let n = (batch as u64).min(records - i) as usize;
        for (k, r) in recs[..n * SMALL].chunks_exact_mut(SMALL).enumerate() {
            r[..8].copy_from_slice(&(i + k as u64).to_le_bytes());
        }
        let mut done = 0;
        while done < n {
            let w = p.write_records(&recs[done * SMALL..n * SMALL]).unwrap();
            if w == 0 {
                spin_loop();
            }
            done += w;
            p.make_visible().unwrap();
        }
        i += n as u64;
    }
    let _ = p.publish().unwrap();
    consumer.join().unwrap();
    start.elapsed()
}

pub fn rtrb_small(records: u64) -> Duration {
    let (mut p, mut c) = rtrb::RingBuffer::<[u8; SMALL]>::new(1024);
    let consumer = std::thread::spawn(move || {
        let mut got = 0;
        while got < records {
            match c.pop() {
                Ok(r) => {
                    black_box(&r);
                    got += 1;
                }
                Err(_) => spin_loop(),
            }
        }
    });
    let mut rec = [0u8; SMALL];
    let start = Instant::now();
    for i in 0..records {
        rec[..8].copy_from_slice(&i.to_le_bytes());
        while p.push(rec).is_err() {
            spin_loop();
        }
    }
    consumer.join().unwrap();
    start.elapsed()
}

pub fn rtrb_chunk(records: u64, batch: u64) -> Duration {
    let (mut p, mut c) = rtrb::RingBuffer::<[u8; SMALL]>::new(1024);
    let consumer = std::thread::spawn(move || {
        let mut got = 0;
        while got < records {
            let n = c.slots();
            if n == 0 {
                spin_loop();
                continue;
            }
            let chunk = c.read_chunk(n).unwrap();
            let (a, b) = chunk.as_slices();
            for r in a.iter().chain(b) {
                let copy: [u8; SMALL] = *r;
                black_box(&copy);
            }
            chunk.commit_all();
            got += n as u64;
        }
    });
    let rec = [0u8; SMALL];
    let start = Instant::now();
    let mut i = 0;
    while i < records {
        let n = batch.min(records - i) as usize;
        let chunk = loop {
            match p.write_chunk_uninit(n) {
                Ok(c) => break c,
                Err(_) => spin_loop(),
            }
        };
        let base = i;
        chunk.fill_from_iter((0..n as u64).map(|k| {
            let mut r = rec;
            r[..8].copy_from_slice(&(base + k).to_le_bytes());
            r
        }));
        i += n as u64;
    }
    consumer.join().unwrap();
    start.elapsed()
}

/// Copies `src` into the two halves of an uninitialised chunk, from `at`.
pub fn fill(a: &mut [MaybeUninit<u8>], b: &mut [MaybeUninit<u8>], at: usize, src: &[u8]) {
    let mut i = at;
    let mut s = src;
    for half in [a, b] {
        if i >= half.len() {
            i -= half.len();
            continue;
        }
        let n = (half.len() - i).min(s.len());
        // SAFETY: `n` bytes fit in `half` from `i` and in `s`; u8 needs no init.
        unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), half.as_mut_ptr().add(i) as *mut u8, n) };
        s = &s[n..];
        i = 0;
    }
}

pub fn rtrb_large(size: usize, records: u64) -> Duration {
    let (mut p, mut c) = rtrb::RingBuffer::<u8>::new(1 << 20);
    let consumer = std::thread::spawn(move || {
        let mut buf = vec![0u8; size];
        let mut got = 0;
        while got < records {
            let Ok(h) = c.read_chunk(8) else {
                spin_loop();
                continue;
            };
            let mut len = [0u8; 8];
            let (a, b) = h.as_slices();
            len[..a.len()].copy_from_slice(a);
            len[a.len()..].copy_from_slice(b);
            h.commit_all();
            let len = u64::from_le_bytes(len) as usize;
            // The producer commits prefix and payload together.
            let r = c.read_chunk(len).unwrap();
            let (a, b) = r.as_slices();
            buf[..a.len()].copy_from_slice(a);
            buf[a.len()..a.len() + b.len()].copy_from_slice(b);
            r.commit_all();
            got += 1;
        }
        black_box(&buf);
    });
    let mut rec = vec![0u8; size];
    let start = Instant::now();
    for i in 0..records {
        rec[..8].copy_from_slice(&i.to_le_bytes());
        let mut chunk = loop {
            match p.write_chunk_uninit(8 + size) {
                Ok(c) => break c,
                Err(_) => spin_loop(),
            }
        };
        let (a, b) = chunk.as_mut_slices();
        fill(a, b, 0, &(size as u64).to_le_bytes());
        fill(a, b, 8, &rec);
        // SAFETY: all 8 + size bytes were written above.
        unsafe { chunk.commit_all() };
    }
    consumer.join().unwrap();
    start.elapsed()
}

/// One thread copying `src` into `dst` (larger than the caches): the
/// physical bandwidth limit.
pub fn memcpy(src: &[u8], dst: &mut [u8]) -> Duration {
    let start = Instant::now();
    dst.copy_from_slice(black_box(src));
    black_box(&dst);
    start.elapsed()
}
