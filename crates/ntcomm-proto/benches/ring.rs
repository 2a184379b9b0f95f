//! Host ring throughput: ntcomm's ring vs `rtrb` vs plain memcpy bandwidth.
//!
//! Two threads (producer on the bench thread, consumer spawned per sample), both
//! spinning; time from the first push to the consumer's last pop. Run with
//! `cargo bench -p ntcomm-proto --bench ring`.
//!
//! Every 64 B record carries its sequence number in its first 8 bytes; every
//! consumer copies each record out (`black_box` per record), as `try_pop` does.
//!
//! - `64B/ntcomm_push`: `try_push` (write + publish, i.e. with the wake-up check)
//!   per record, `try_pop` per record. The record is stamped in a buffer first.
//! - `64B/ntcomm_batch32`: `write` per record, `publish` every 32 records (and when full).
//! - `64B/ntcomm_visible`: `write_parts([seq, body])` + `make_visible` per record
//!   (each record visible at once, no wake-up check), `publish` once at the end:
//!   the same service as `rtrb`'s `push`.
//! - `64B/ntcomm_visible32`: the same with `make_visible` every 32 records.
//! - `64B/ntcomm_fixed`: a ring of fixed 64 B records (no record header):
//!   `write_parts([seq, body])` + `make_visible` per record, `try_pop` per record.
//!   The like-for-like row for `rtrb`'s `push`/`pop`.
//! - `64B/ntcomm_fixed32`: the same with `make_visible` every 32 records.
//! - `64B/ntcomm_bulk32`: the fixed ring in bulk: 32 records stamped in a
//!   buffer, `write_records` (one copy) + `make_visible`; the consumer takes
//!   `pop_records` into a 32-record buffer (one copy) and touches each record
//!   (`black_box`). The like-for-like row for `rtrb`'s chunk API.
//! - `64B/rtrb`: `rtrb::RingBuffer<[u8; 64]>` (1024 slots, the same 64 KiB), `push`/`pop` per record.
//! - `64B/rtrb_chunk32`: the same ring, `write_chunk_uninit(32)` + `fill_from_iter`;
//!   the consumer takes `read_chunk(slots())` and copies each record out.
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
mod work;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use work::*;

const SMALL_BATCH: u64 = 100_000;
const LARGE: usize = 64 * 1024;
const LARGE_BATCH: u64 = 1024;

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("64B");
    g.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Bytes(SMALL_BATCH * SMALL as u64));
    g.bench_function("ntcomm_push", |b| b.iter_custom(|n| ntcomm(1 << 16, SMALL, n * SMALL_BATCH, 1)));
    g.bench_function("ntcomm_batch32", |b| b.iter_custom(|n| ntcomm(1 << 16, SMALL, n * SMALL_BATCH, 32)));
    g.bench_function("ntcomm_visible", |b| b.iter_custom(|n| ntcomm_visible(n * SMALL_BATCH, 1, false)));
    g.bench_function("ntcomm_visible32", |b| b.iter_custom(|n| ntcomm_visible(n * SMALL_BATCH, 32, false)));
    g.bench_function("ntcomm_fixed", |b| b.iter_custom(|n| ntcomm_visible(n * SMALL_BATCH, 1, true)));
    g.bench_function("ntcomm_fixed32", |b| b.iter_custom(|n| ntcomm_visible(n * SMALL_BATCH, 32, true)));
    g.bench_function("ntcomm_bulk32", |b| b.iter_custom(|n| ntcomm_bulk(n * SMALL_BATCH, 32)));
    g.bench_function("rtrb", |b| b.iter_custom(|n| rtrb_small(n * SMALL_BATCH)));
    g.bench_function("rtrb_chunk32", |b| b.iter_custom(|n| rtrb_chunk(n * SMALL_BATCH, 32)));
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
    g.bench_function("128MiB", |b| b.iter_custom(|n| (0..n).map(|_| memcpy(&src, &mut dst)).sum()));
    g.finish();
}

criterion_group!(ring, benches);
criterion_main!(ring);
