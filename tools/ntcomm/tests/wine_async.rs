//! The awaitable API (`ntcomm_um::aio`, feature `async`) against the real
//! driver under Wine: payloads of every kind of future, 10,000 requests in
//! flight, the port's message stream answering 100,000 questions, dropping
//! and timing out futures at random moments, and closed handles; under a
//! tokio multi-threaded runtime and under `futures::executor::block_on`.
#![cfg(windows)]

mod common;

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::Poll;
use std::time::Duration;

use common::{eventually, stats};
use futures::StreamExt;
use ntcomm::rig;
use ntcomm::rng::Rng;
use ntcomm_demo_proto::{self as demo, Delay, PortAsk, PortTally, PortVerdict};
use ntcomm_um::aio::{self, AsyncDevice, AsyncPort};
use ntcomm_um::port::MESSAGE_HEADER_LEN;
use ntcomm_um::ErrorKind;

/// The driver's counters and the process's request blocks are shared: one
/// test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().unwrap()
}

fn open() -> AsyncDevice {
    AsyncDevice::open(demo::USER_PATH).unwrap()
}

/// After a test: nothing pended in the driver, no request block alive here.
fn settled(dev: &ntcomm_um::Device, pool_before: u64) {
    eventually("the driver's in-flight count back to zero", || stats(dev).irps_in_flight == 0);
    eventually("every request block freed", || aio::blocks_alive() == 0);
    eventually("the driver's pool back to where it was", || stats(dev).pool_allocations_outstanding <= pool_before);
}

/// Polls `fut` once, so its request is issued.
async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx))).await
}

fn verdict(seq: u64) -> PortVerdict {
    PortVerdict { seq: seq.into(), allow: u8::from(!seq.is_multiple_of(3)) }
}

#[test]
fn every_kind_of_future_completes_with_its_payload() {
    let _s = serial();
    let sync = rig::test_device();
    let pool = stats(&sync).pool_allocations_outstanding;
    runtime().block_on(async {
        let dev = open();
        for ioctl in [demo::ECHO_BUFFERED, demo::ECHO_OUT_DIRECT, demo::ECHO_NEITHER] {
            for len in [0usize, 1, 100, demo::MAX_ECHO] {
                let input: Vec<u8> = (0..len).map(|i| (i * 31 + len) as u8).collect();
                let out = dev.ioctl(&ioctl, &input[..], len).await.unwrap_or_else(|e| panic!("{} {len}: {e}", ioctl.name));
                assert_eq!(out, input, "{} {len}", ioctl.name);
            }
        }
        // METHOD_IN_DIRECT: the second buffer is data the driver reads; it
        // completes with the common prefix's length and leaves the buffer as it was.
        for len in [1usize, 100, demo::MAX_ECHO] {
            let input: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut second = input.clone();
            second[len / 2] ^= 0xff;
            let back = dev.ioctl_into(&demo::COMPARE_IN_DIRECT, &input[..], second.clone()).await.unwrap();
            assert_eq!(back, second[..len / 2], "COMPARE_IN_DIRECT {len}");
        }
        // Typed output; the driver's worker completes it later.
        for (millis, token) in [(0, 7u32), (20, 8)] {
            assert_eq!(dev.call(&demo::DELAYED_COMPLETE, &Delay { millis, token }).await.unwrap(), token);
        }
        // Sizes the declaration refuses fail before any system call.
        let err = dev.ioctl(&demo::ECHO_BUFFERED, &vec![0u8; demo::MAX_ECHO + 1][..], 16).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidParameter, "{err}");
        // Write, then read it back; a read pended first gets the next write.
        assert_eq!(dev.write(b"first".to_vec()).await.unwrap(), 5);
        assert_eq!(dev.read(64).await.unwrap(), b"first");
        let reader = tokio::spawn(dev.read(64));
        eventually("the read pended", || stats(&sync).irps_in_flight == 1);
        assert_eq!(dev.write(b"second".to_vec()).await.unwrap(), 6);
        assert_eq!(reader.await.unwrap().unwrap(), b"second");
        // The inverted call: a waiter pends until an event is posted.
        let waiter = tokio::spawn(dev.ioctl(&demo::WAIT_EVENT, &(), demo::MAX_EVENT));
        eventually("the waiter pended", || stats(&sync).irps_in_flight == 1);
        dev.ioctl(&demo::POST_EVENT, &b"event!"[..], 0).await.unwrap();
        assert_eq!(waiter.await.unwrap().unwrap(), b"event!");
        let s = dev.call(&demo::GET_STATS, &()).await.unwrap();
        assert!(s.events_delivered >= 1, "{s:?}");
    });
    settled(&sync, pool);
}

#[test]
fn ten_thousand_ioctls_and_reads_in_flight_from_one_task_set() {
    let _s = serial();
    let sync = rig::test_device();
    let pool = stats(&sync).pool_allocations_outstanding;
    const N: u32 = 10_000;
    runtime().block_on(async {
        let dev = open();
        // IOCTLs: every one completes with its own token.
        let mut set = tokio::task::JoinSet::new();
        for token in 0..N {
            let f = dev.call(&demo::DELAYED_COMPLETE, &Delay { millis: 200 + token % 50, token });
            set.spawn(async move { (token, f.await) });
        }
        let mut seen = HashSet::new();
        while let Some(done) = set.join_next().await {
            let (token, got) = done.unwrap();
            assert_eq!(got.unwrap(), token);
            assert!(seen.insert(token));
        }
        assert_eq!(seen.len(), N as usize);

        // Reads: all 10,000 pended at once (the driver counts them), then
        // each takes exactly one of 10,000 writes.
        let mut reads = tokio::task::JoinSet::new();
        for _ in 0..N {
            reads.spawn(dev.read(64));
        }
        eventually("10,000 reads pended in the driver", || stats(&sync).irps_in_flight == u64::from(N));
        let mut writes = tokio::task::JoinSet::new();
        for i in 0..N {
            writes.spawn(dev.write(format!("message {i}").into_bytes()));
        }
        while let Some(w) = writes.join_next().await {
            assert!(w.unwrap().unwrap() > 8);
        }
        let mut got = HashSet::new();
        while let Some(r) = reads.join_next().await {
            assert!(got.insert(String::from_utf8(r.unwrap().unwrap()).unwrap()), "a message read twice");
        }
        let want: HashSet<String> = (0..N).map(|i| format!("message {i}")).collect();
        assert_eq!(got, want);
    });
    settled(&sync, pool);
}

#[test]
fn the_port_stream_answers_100000_questions_exactly_once_under_tokio() {
    let _s = serial();
    let sync = rig::test_device();
    let pool = stats(&sync).pool_allocations_outstanding;
    const QUESTIONS: u32 = 100_000;
    let (tally, seen) = runtime().block_on(async {
        let dev = open();
        let port = AsyncPort::connect(demo::PORT_NAME, demo::PORT_CONTEXT).unwrap();
        let mut stream = port.messages(MESSAGE_HEADER_LEN + 256, 64);
        let service = tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Some(item) = stream.next().await {
                // The receives end cancelled when the port is closed.
                let Ok(request) = item else { continue };
                let seq = demo::check_record(request.body()).expect("a valid question");
                request.answer(&demo::PORT_QUESTION, &verdict(seq)).unwrap();
                seen.push(seq);
            }
            seen
        });
        let ask = PortAsk { questions: QUESTIONS, threads: 16, timeout_ms: 0, want_reply: 1, question_len: 64, reserved: 0 };
        let tally: PortTally = dev.call(&demo::PORT_ASK, &ask).await.unwrap();
        port.close();
        (tally, service.await.unwrap())
    });
    let t = tally;
    assert_eq!((t.sent, t.replied, t.bad_replies, t.timeouts, t.disconnected, t.failed), (100_000, 100_000, 0, 0, 0, 0), "{t:?}");
    assert_eq!(t.allowed, 66_666, "{t:?}");
    assert_eq!(seen.len(), QUESTIONS as usize, "each question answered once");
    let unique: HashSet<u64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), QUESTIONS as usize, "no question twice");
    assert!(unique.iter().all(|&s| s < u64::from(QUESTIONS)));
    eventually("the port client gone", || stats(&sync).port_clients == 0);
    settled(&sync, pool);
}

#[test]
fn dropping_half_of_10000_futures_at_random_moments_loses_and_corrupts_nothing() {
    let _s = serial();
    let sync = rig::test_device();
    let pool = stats(&sync).pool_allocations_outstanding;
    let before = stats(&sync);
    let seed = 0x5eed_a5c0 ^ u64::from(std::process::id());
    println!("seed {seed:#x}");
    let mut rng = Rng::new(seed);
    let (kept, dropped) = runtime().block_on(async {
        let dev = open();
        let mut set = tokio::task::JoinSet::new();
        for i in 0..10_000u32 {
            let r = rng.next_u64();
            let drop_it = r & 1 == 1;
            // When to drop: before the first poll, right after it, or at a
            // random moment up to 30 ms in (a timeout is a drop).
            let after = Duration::from_micros((r >> 8) % 30_000);
            let never_polled = (r >> 40) % 16 == 0;
            let kind = (r >> 1) % 4;
            let dev = dev.clone();
            set.spawn(async move {
                let len = ((r >> 20) % 2048) as usize;
                let payload: Vec<u8> = (0..len).map(|k| (k as u32 ^ i) as u8).collect();
                // Each kind checks its own payload when it completes.
                let check: Pin<Box<dyn Future<Output = bool> + Send>> = match kind {
                    0 => {
                        let f = dev.call(&demo::DELAYED_COMPLETE, &Delay { millis: ((r >> 16) % 40) as u32, token: i });
                        Box::pin(async move { f.await.unwrap() == i })
                    }
                    1 => {
                        let f = dev.ioctl(&demo::ECHO_NEITHER, &payload[..], len);
                        Box::pin(async move { f.await.unwrap() == payload })
                    }
                    2 => {
                        let f = dev.ioctl(&demo::ECHO_OUT_DIRECT, &payload[..], len);
                        Box::pin(async move { f.await.unwrap() == payload })
                    }
                    // Inverted-call waits that only a drop ends (fewer than
                    // the driver's MAX_WAITERS at once).
                    _ if drop_it && i % 4 == 3 => {
                        let f = dev.ioctl(&demo::WAIT_EVENT, &(), demo::MAX_EVENT);
                        Box::pin(async move {
                            let _ = f.await;
                            false
                        })
                    }
                    _ => {
                        let f = dev.call(&demo::DELAYED_COMPLETE, &Delay { millis: 0, token: i });
                        Box::pin(async move { f.await.unwrap() == i })
                    }
                };
                if !drop_it {
                    assert!(check.await, "request {i} (kind {kind}) completed with a wrong payload");
                    return true;
                }
                if never_polled {
                    drop(check);
                } else {
                    let _ = tokio::time::timeout(after, check).await;
                }
                false
            });
        }
        let (mut kept, mut dropped) = (0u32, 0u32);
        while let Some(done) = set.join_next().await {
            if done.unwrap() {
                kept += 1;
            } else {
                dropped += 1;
            }
        }
        (kept, dropped)
    });
    println!("{kept} completed and checked, {dropped} dropped");
    assert_eq!(kept + dropped, 10_000);
    assert!((4_500..=5_500).contains(&dropped), "{dropped}");
    settled(&sync, pool);
    let after = stats(&sync);
    assert!(after.irps_cancelled > before.irps_cancelled, "some drops cancelled a pended request: {after:?}");
    // The device still works.
    assert_eq!(runtime().block_on(open().call(&demo::DELAYED_COMPLETE, &Delay { millis: 0, token: 99 })).unwrap(), 99);
}

#[test]
fn a_timeout_cancels_an_inverted_call_wait() {
    let _s = serial();
    let sync = rig::test_device();
    let pool = stats(&sync).pool_allocations_outstanding;
    let before = stats(&sync).irps_cancelled;
    runtime().block_on(async {
        let dev = open();
        let wait = dev.ioctl(&demo::WAIT_EVENT, &(), demo::MAX_EVENT);
        assert!(tokio::time::timeout(Duration::from_millis(50), wait).await.is_err(), "no event was posted");
        eventually("the waiter cancelled", || stats(&sync).irps_cancelled == before + 1);
        // Nobody waits any more: the event is refused, not swallowed.
        let err = dev.ioctl(&demo::POST_EVENT, &b"late"[..], 0).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFoundItem, "{err}");
    });
    settled(&sync, pool);
}

#[test]
fn closing_cancels_what_is_in_flight_and_refuses_what_comes_after() {
    let _s = serial();
    let sync = rig::test_device();
    let pool = stats(&sync).pool_allocations_outstanding;
    runtime().block_on(async {
        let dev = open();
        let mut waiting = dev.ioctl(&demo::WAIT_EVENT, &(), demo::MAX_EVENT);
        assert!(poll_once(&mut waiting).await.is_pending());
        eventually("the waiter pended", || stats(&sync).irps_in_flight == 1);
        let fresh = dev.call(&demo::GET_STATS, &());
        dev.close();
        assert!(dev.is_closed());
        let err = waiting.await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
        let err = fresh.await.unwrap_err();
        assert_eq!(err.win32(), 6, "ERROR_INVALID_HANDLE: {err}");
        let err = dev.read(16).await.unwrap_err();
        assert_eq!(err.win32(), 6, "ERROR_INVALID_HANDLE: {err}");

        // Dropping the last owner closes too; a future kept from before fails.
        let dev = open();
        let kept = dev.write(b"x".to_vec());
        drop(dev);
        assert_eq!(kept.await.unwrap_err().win32(), 6);

        // A port closed under its stream ends the stream.
        let port = AsyncPort::connect(demo::PORT_NAME, demo::PORT_CONTEXT).unwrap();
        let mut stream = port.messages(MESSAGE_HEADER_LEN + 64, 4);
        let mut first = Box::pin(stream.next());
        assert!(poll_once(&mut first).await.is_pending());
        drop(first);
        port.close();
        let mut errors = 0;
        while let Some(item) = stream.next().await {
            assert_eq!(item.err().map(|e| e.kind()), Some(ErrorKind::Cancelled));
            errors += 1;
        }
        assert_eq!(errors, 4, "each receive ends once");
        let err = port.send(b"after".to_vec(), 8).await.unwrap_err();
        assert_eq!(err.win32(), 6, "{err}");
    });
    settled(&sync, pool);
}

/// The two shortcuts that skip the reactor thread, under one polling
/// thread: an echo the driver completes at once is ready on its first poll
/// (its block lives on until its packet is dequeued), and each issue while
/// others are in flight dequeues the completions already queued (racing the
/// reactor thread). Pending waits dropped beside them are cancelled, dropped
/// futures lose nothing, every block is freed.
#[test]
fn requests_completed_at_once_or_by_the_polling_thread_keep_payloads_and_drops() {
    let _s = serial();
    let sync = rig::test_device();
    let pool = stats(&sync).pool_allocations_outstanding;
    let before = stats(&sync).irps_cancelled;
    let (mut at_once, mut later) = (0u32, 0u32);
    futures::executor::block_on(async {
        let dev = open();
        for round in 0..20u32 {
            let payloads: Vec<Vec<u8>> = (0..64u32).map(|i| (0..=(i * 7 % 200)).map(|k| (k ^ i ^ round) as u8).collect()).collect();
            // Inverted-call waits that stay pending, to be dropped below.
            let mut waits: Vec<_> = (0..4).map(|_| dev.ioctl(&demo::WAIT_EVENT, &(), demo::MAX_EVENT)).collect();
            for w in &mut waits {
                assert!(poll_once(w).await.is_pending());
            }
            let mut pending = Vec::new();
            for (i, p) in payloads.iter().enumerate() {
                let mut f = dev.ioctl(&demo::ECHO_BUFFERED, &p[..], p.len());
                match poll_once(&mut f).await {
                    Poll::Ready(out) => {
                        assert_eq!(&out.unwrap(), p, "round {round} echo {i}");
                        at_once += 1;
                    }
                    Poll::Pending => pending.push((i, f)),
                }
            }
            // A pending wait dropped while completed-at-once blocks still
            // wait for their packets.
            drop(waits);
            // Drop every third pending echo unawaited; await the rest.
            for (i, f) in pending {
                later += 1;
                if i % 3 == 0 {
                    drop(f);
                } else {
                    assert_eq!(f.await.unwrap(), payloads[i], "round {round} echo {i}");
                }
            }
        }
        // Many in flight at once through join_all (each issue polls the port).
        let all =
            futures::future::join_all((0..512u32).map(|i| dev.call(&demo::DELAYED_COMPLETE, &Delay { millis: i % 3, token: i }))).await;
        for (i, got) in all.into_iter().enumerate() {
            assert_eq!(got.unwrap(), i as u32);
        }
    });
    println!(
        "{at_once} echoes ready on their first poll, {later} later; {} packets dequeued by polling threads",
        aio::packets_dequeued_by_pollers()
    );
    assert!(at_once > 0, "Wine 8 completes a buffered echo at once: the shortcut was not taken");
    settled(&sync, pool);
    assert_eq!(stats(&sync).irps_cancelled, before + 80, "each dropped wait cancelled, nothing else");
}

#[test]
fn works_under_futures_block_on() {
    let _s = serial();
    let sync = rig::test_device();
    let pool = stats(&sync).pool_allocations_outstanding;
    futures::executor::block_on(async {
        let dev = open();
        assert_eq!(dev.ioctl(&demo::ECHO_BUFFERED, &b"block_on"[..], 8).await.unwrap(), b"block_on");
        // The port on one thread: the ask and the answering loop joined.
        let port = AsyncPort::connect(demo::PORT_NAME, demo::PORT_CONTEXT).unwrap();
        let mut stream = port.messages(MESSAGE_HEADER_LEN + 256, 8);
        let ask = PortAsk { questions: 500, threads: 4, timeout_ms: 0, want_reply: 1, question_len: 64, reserved: 0 };
        let asking = dev.call(&demo::PORT_ASK, &ask);
        let answering = async {
            let mut n = 0;
            while n < 500 {
                let request = stream.next().await.unwrap().unwrap();
                let seq = demo::check_record(request.body()).unwrap();
                request.answer(&demo::PORT_QUESTION, &verdict(seq)).unwrap();
                n += 1;
            }
        };
        let (tally, ()) = futures::future::join(asking, answering).await;
        let t = tally.unwrap();
        assert_eq!((t.sent, t.replied, t.bad_replies), (500, 500, 0), "{t:?}");
        // A user-to-driver message: the demo's callback echoes.
        assert_eq!(port.send(b"ping".to_vec(), 16).await.unwrap(), b"ping");
        const ECHO_U64: ntcomm_proto::Message<u64, u64> = ntcomm_proto::Message::fixed("ECHO_U64");
        assert_eq!(port.call(&ECHO_U64, &42).await.unwrap(), 42);
        drop(stream);
        port.close();
    });
    eventually("the port client gone", || stats(&sync).port_clients == 0);
    settled(&sync, pool);
}

#[test]
fn the_ring_channel_receives_and_sends_without_a_thread_per_channel() {
    use ntcomm_um::aio::{AsyncRingReceiver, AsyncRingSender};
    use ntcomm_um::{RingChannel, RingOptions};
    let _s = serial();
    let sync = rig::test_device();
    const N: u64 = 2_000;
    runtime().block_on(async {
        // The driver's source produces; the task sleeps on the channel's event between records.
        let ch = RingChannel::open(demo::USER_PATH, &demo::RINGS, 1 << 16, 1 << 16).unwrap();
        ch.control(&demo::RING_SOURCE, &demo::RingSource { count: N, rate: 20_000, record_len: 64 }).unwrap();
        let (_tx, rx) = ch.split();
        let mut rx = AsyncRingReceiver::new(rx);
        let mut buf = vec![0u8; 4096];
        for seq in 0..N {
            let n = rx.recv(&mut buf).await.unwrap();
            assert_eq!(demo::check_record(&buf[..n]), Some(seq), "record {seq}");
        }

        // Echo through the smallest rings: the send waits while the
        // driver-bound ring is full, the receive while the other is empty.
        let options = RingOptions::new(4096, 4096).with_mode(demo::RING_MODE_ECHO);
        let (tx, rx) = RingChannel::open_with(demo::USER_PATH, &demo::RINGS, &options).unwrap().split();
        let (mut tx, mut rx) = (AsyncRingSender::new(tx).unwrap(), AsyncRingReceiver::new(rx));
        let sending = tokio::spawn(async move {
            let mut record = vec![0u8; 200];
            for seq in 0..N {
                assert!(demo::fill_record(seq, &mut record));
                tx.send(&record).await.unwrap();
            }
            tx
        });
        for seq in 0..N {
            let n = rx.recv(&mut buf).await.unwrap();
            assert_eq!(demo::check_record(&buf[..n]), Some(seq), "echoed record {seq}");
        }
        let tx = sending.await.unwrap();
        assert_eq!(tx.into_inner().status().unwrap().bad_records, 0);

        // A receive dropped while it sleeps withdraws its sleep; the next one works.
        assert!(tokio::time::timeout(Duration::from_millis(20), rx.recv(&mut buf)).await.is_err());
        assert_eq!(rx.get_mut().try_recv(&mut buf).unwrap(), None);
    });
    assert_eq!(stats(&sync).ring_bad_records, 0);
}

#[test]
fn the_pipe_server_accepts_and_reads_the_drivers_messages() {
    use ntcomm_um::aio::AsyncPipeServer;
    let _s = serial();
    let sync = rig::test_device();
    eventually("no pipe messages left from earlier tests", || stats(&sync).pipe_messages_queued == 0);
    ntcomm::peer::register().unwrap();
    runtime().block_on(async {
        let dev = open();
        let server = AsyncPipeServer::create(demo::PIPE_NAME).unwrap();
        for i in 0..50 {
            dev.ioctl(&demo::PIPE_SEND, format!("async {i}").as_bytes(), 0).await.unwrap();
        }
        server.accept().await.unwrap();
        for i in 0..50 {
            let m = server.read_message().await.unwrap().expect("the driver stays connected");
            assert_eq!(String::from_utf8(m).unwrap(), format!("async {i}"));
        }
        // A read dropped while it waits is cancelled; the next read gets the next message.
        assert!(tokio::time::timeout(Duration::from_millis(20), server.read_message()).await.is_err());
        dev.ioctl(&demo::PIPE_SEND, &b"after the drop"[..], 0).await.unwrap();
        assert_eq!(server.read_message().await.unwrap().unwrap(), b"after the drop");
    });
    eventually("all counted as sent", || stats(&sync).pipe_messages_queued == 0);
}

#[test]
fn the_lpc_receive_loop_serves_the_drivers_calls() {
    use ntcomm_demo_proto::{LpcAsk, LpcConnect, LpcConnected, LpcTally};
    use ntcomm_um::aio::AsyncLpcServer;
    use ntcomm_um::lpc::LpcEvent;
    let _s = serial();
    let sync = rig::test_device();
    const INSTANCE: u32 = 17;
    let server = AsyncLpcServer::new(ntcomm::lpc_server::create(INSTANCE).expect("LPC server port (ntcomm's Wine LPC)"));
    let tally = runtime().block_on(async {
        let dev = open();
        let serving = tokio::spawn(async move {
            let (mut reply, mut answered, mut conn) = (None, 0u64, None);
            let mut out = vec![0u8; 4096];
            loop {
                match server.receive(reply.take()).await.unwrap() {
                    LpcEvent::ConnectionRequest(req) => {
                        conn = Some(server.accept(req, demo::LPC_SERVER_INFO.to_vec(), 1).await.unwrap());
                    }
                    LpcEvent::Request(req) => {
                        let n = demo::lpc_answer(&req.body, &mut out).unwrap();
                        reply = Some(req.reply(&out[..n]).unwrap());
                        answered += 1;
                    }
                    LpcEvent::PortClosed { .. } | LpcEvent::ClientDied { .. } => break,
                    _ => {}
                }
            }
            drop(conn);
            answered
        });
        let mut c = LpcConnect::new(demo::LPC_CONNECT_INFO, 0);
        c.instance = INSTANCE;
        let connected: LpcConnected = dev.call(&demo::LPC_CONNECT, &c).await.unwrap();
        assert_eq!(&connected.info[..connected.info_len as usize], demo::LPC_SERVER_INFO);
        let ask = LpcAsk { kind: demo::LPC_KIND_REQUEST, workers: 2, count: 1_000, body_len: 64, timeout_ms: 0, view_len: 0 };
        let tally: LpcTally = dev.call(&demo::LPC_ASK, &ask).await.unwrap();
        dev.ioctl(&demo::LPC_DISCONNECT, &(), 0).await.unwrap();
        assert_eq!(serving.await.unwrap(), 2_000);
        tally
    });
    assert_eq!((tally.sent, tally.replied, tally.mismatched, tally.failed), (2_000, 2_000, 0, 0), "{tally:?}");
    eventually("the driver's LPC connection closed", || stats(&sync).lpc_connected == 0);
}

/// The example service (`examples/async_service.rs`, built by `cargo test`)
/// runs as a user would run it: its echoes come back intact and it answers
/// every one of the driver's questions.
#[test]
fn the_example_service_answers_every_question() {
    let _serial = serial();
    let exe = std::env::current_exe().unwrap();
    let examples = exe.parent().and_then(|deps| deps.parent()).unwrap().join("examples");
    let service = examples.join("async_service.exe");
    assert!(service.exists(), "{} was not built", service.display());
    let out = std::process::Command::new(&service).arg("3000").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}: {:?}\n{text}\n{}", service.display(), out.status, String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("1000 echoes in flight together: 1000 came back intact"), "{text}");
    assert!(text.contains("replied 3000") && text.contains("the service answered 3000"), "{text}");
}
