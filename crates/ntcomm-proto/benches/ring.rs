//! Host ring throughput: ntcomm's ring vs `rtrb` vs plain memcpy bandwidth.
//!
//! Two threads (producer on the bench thread, consumer spawned per sample), both
//! spinning; time from the first push to the consumer's last pop. Run with
//! `cargo bench -p ntcomm-proto --bench ring`.
//!
//! - `64B/ntcomm_push`: `try_push` (write + publish) per record, `try_pop` per record.
//! - `64B/ntcomm_batch32`: `write` per record, `publish` every 32 records (and when full).
//! - `64B/rtrb`: `rtrb::RingBuffer<[u8; 64]>` (1024 slots, the same 64 KiB), `push`/`pop` per record.
//! - `64KiB/ntcomm`: 1 MiB ring, `try_push`/`try_pop` into a 64 KiB buffer.
//! - `64KiB/rtrb`: `rtrb::RingBuffer<u8>` of 1 MiB used as a byte stream: each
//!   record is one `write_chunk_uninit(8 + len)` (length prefix + payload, copied
//!   with two memcpys), read back with `read_chunk(8)` and `read_chunk(len)`
//!   copied into a 64 KiB buffer: the same copy-in/copy-out work as the ring.
//! - `memcpy/128MiB`: one thread copying 128 MiB between two buffers (larger than
//!   the caches): the physical bandwidth limit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::{black_box, spin_loop};
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Mem;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const SMALL: usize = 64;
const SMALL_BATCH: u64 = 100_000;
const LARGE: usize = 64 * 1024;
const LARGE_BATCH: u64 = 1024;

fn ntcomm(cap: u32, size: usize, records: u64, batch: u64) -> Duration {
    let mem = Arc::new(Mem::ring(cap));
    let m2 = mem.clone();
    let consumer = std::thread::spawn(move || {
        let mut c = m2.consumer().unwrap();
        let mut buf = vec![0u8; size];
        let mut got = 0;
        while got < records {
            match c.try_pop(&mut buf).unwrap() {
                Some(_) => got += 1,
                None => spin_loop(),
            }
        }
        black_box(&buf);
    });
    let mut p = mem.producer().unwrap();
    let mut rec = vec![0u8; size];
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
            if (i + 1) % batch == 0 {
                let _ = p.publish().unwrap();
            }
        }
    }
    let _ = p.publish().unwrap();
    consumer.join().unwrap();
    start.elapsed()
}

fn rtrb_small(records: u64) -> Duration {
    let (mut p, mut c) = rtrb::RingBuffer::<[u8; SMALL]>::new(1024);
    let consumer = std::thread::spawn(move || {
        let mut got = 0;
        let mut last = [0u8; SMALL];
        while got < records {
            match c.pop() {
                Ok(r) => {
                    last = r;
                    got += 1;
                }
                Err(_) => spin_loop(),
            }
        }
        black_box(last);
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

/// Copies `src` into the two halves of an uninitialised chunk, from `at`.
fn fill(a: &mut [MaybeUninit<u8>], b: &mut [MaybeUninit<u8>], at: usize, src: &[u8]) {
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

fn rtrb_large(size: usize, records: u64) -> Duration {
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

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("64B");
    g.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Bytes(SMALL_BATCH * SMALL as u64));
    g.bench_function("ntcomm_push", |b| {
        b.iter_custom(|n| ntcomm(1 << 16, SMALL, n * SMALL_BATCH, 1))
    });
    g.bench_function("ntcomm_batch32", |b| {
        b.iter_custom(|n| ntcomm(1 << 16, SMALL, n * SMALL_BATCH, 32))
    });
    g.bench_function("rtrb", |b| b.iter_custom(|n| rtrb_small(n * SMALL_BATCH)));
    g.finish();

    let mut g = c.benchmark_group("64KiB");
    g.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Bytes(LARGE_BATCH * LARGE as u64));
    g.bench_function("ntcomm", |b| b.iter_custom(|n| ntcomm(1 << 20, LARGE, n * LARGE_BATCH, 1)));
    g.bench_function("rtrb", |b| b.iter_custom(|n| rtrb_large(LARGE, n * LARGE_BATCH)));
    g.finish();

    let mut g = c.benchmark_group("memcpy");
    const BIG: usize = 128 << 20;
    let src = vec![1u8; BIG];
    let mut dst = vec![0u8; BIG];
    g.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Bytes(BIG as u64));
    g.bench_function("128MiB", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&src));
            black_box(&dst);
        })
    });
    g.finish();
}

criterion_group!(ring, benches);
criterion_main!(ring);
