//! An async service for the demo driver on tokio, through `ntcomm_um::aio`:
//! a filter-port receiver answering the driver's questions, each answer in
//! its own task (with 1,024 receives and up to thousands of answers in
//! flight), and an IOCTL client that awaits echoes, an inverted-call wait
//! bounded by a timeout, and the `PORT_ASK` that makes the driver ask.
//!
//! ```sh
//! cargo xtask build
//! cargo xtask wine -- target/x86_64-pc-windows-gnu/debug/examples/async_service.exe [QUESTIONS]
//! ```
//!
//! The driver image is `NTCOMM_DRIVER` or the one `cargo xtask build` made.

#[cfg(windows)]
fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    service::main()
}

#[cfg(not(windows))]
fn main() {
    eprintln!("async_service runs on Windows (or under Wine: cargo xtask wine -- .../async_service.exe)");
}

#[cfg(windows)]
mod service {
    use std::time::{Duration, Instant};

    use futures::StreamExt;
    use ntcomm_demo_proto::{self as demo, PortAsk, PortVerdict};
    use ntcomm_um::aio::{AsyncDevice, AsyncPort, PortRequest};
    use ntcomm_um::port::MESSAGE_HEADER_LEN;
    use ntcomm_um::ErrorKind;

    type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

    /// The policy: allow unless the question's number is a multiple of 3.
    async fn decide(request: PortRequest) -> Result<()> {
        let seq = demo::check_record(request.body()).ok_or("a question failed its checksum")?;
        let verdict = PortVerdict { seq: seq.into(), allow: u8::from(!seq.is_multiple_of(3)) };
        request.answer(&demo::PORT_QUESTION, &verdict)?;
        Ok(())
    }

    pub fn main() -> Result<()> {
        let questions: u32 = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(20_000);
        let image = ntcomm::rig::driver_path(None).ok_or("no driver image: set NTCOMM_DRIVER or run cargo xtask build")?;
        ntcomm::rig::ensure_demo_running(&image)?;
        let rt = tokio::runtime::Builder::new_multi_thread().enable_time().build()?;
        rt.block_on(async move {
            // The receiver: one task reads the stream, each answer runs in a task of its own.
            let port = AsyncPort::connect(demo::PORT_NAME, demo::PORT_CONTEXT)?;
            let mut messages = port.messages(MESSAGE_HEADER_LEN + 256, 1024);
            let receiver = tokio::spawn(async move {
                let mut answers = tokio::task::JoinSet::new();
                let mut answered = 0u64;
                while let Some(item) = messages.next().await {
                    match item {
                        Ok(request) => {
                            answers.spawn(decide(request));
                        }
                        // Closing the port ends the receives: the stream reports each, then ends.
                        Err(e) if e.kind() == ErrorKind::Cancelled => {}
                        Err(e) => return Err(e.to_string()),
                    }
                    while let Some(done) = answers.try_join_next() {
                        done.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
                        answered += 1;
                    }
                }
                while let Some(done) = answers.join_next().await {
                    done.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
                    answered += 1;
                }
                Ok::<u64, String>(answered)
            });

            // The client: echoes in flight together, then a wait that times out.
            let dev = AsyncDevice::open(demo::USER_PATH)?;
            let mut echoes = tokio::task::JoinSet::new();
            for i in 0..1000u32 {
                let payload = format!("echo {i}").into_bytes();
                let f = dev.ioctl(&demo::ECHO_BUFFERED, &payload[..], payload.len());
                echoes.spawn(async move { f.await.map(|out| out == payload) });
            }
            let mut ok = 0;
            while let Some(done) = echoes.join_next().await {
                ok += usize::from(done??);
            }
            println!("1000 echoes in flight together: {ok} came back intact");
            let wait = dev.ioctl(&demo::WAIT_EVENT, &(), demo::MAX_EVENT);
            match tokio::time::timeout(Duration::from_millis(100), wait).await {
                Err(_) => println!("inverted-call wait: no event within 100 ms; dropping the future cancelled it"),
                Ok(r) => println!("inverted-call wait: {:?}", r.map(|e| e.len())),
            }

            // The driver asks; the receiver answers.
            let started = Instant::now();
            let ask = PortAsk { questions, threads: 16, timeout_ms: 10_000, want_reply: 1, question_len: 64, reserved: 0 };
            let tally = dev.call(&demo::PORT_ASK, &ask).await?;
            let took = started.elapsed();
            port.close();
            let answered = receiver.await??;
            println!(
                "{} questions from 16 driver threads in {took:.2?} ({:.0}/s): replied {}, allowed {}, denied {}, timeouts {}; \
                 the service answered {answered}",
                tally.sent,
                tally.sent as f64 / took.as_secs_f64(),
                tally.replied,
                tally.allowed,
                tally.denied,
                tally.timeouts
            );
            let stats = dev.call(&demo::GET_STATS, &()).await?;
            println!("driver: {} requests pended now, {} cancelled since load", stats.irps_in_flight, stats.irps_cancelled);
            if tally.replied != u64::from(questions) || answered != u64::from(questions) {
                return Err(format!("{} of {questions} questions were answered", tally.replied).into());
            }
            Ok(())
        })
    }
}
