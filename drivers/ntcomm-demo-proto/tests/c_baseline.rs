//! The C baseline (`baseline/c/ntcomm_c.h`) must speak the demo's protocol on
//! the channels the benchmark compares: same control codes, same limits.
//! This reads the header's `#define`s and checks them against
//! `ntcomm_demo_proto`, so neither side can drift unnoticed.

use std::collections::HashMap;

use ntcomm_demo_proto as demo;
use ntcomm_proto::{Access, ControlCode, DeviceType, Method};

fn header() -> HashMap<String, u64> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../baseline/c/ntcomm_c.h");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut defs = HashMap::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        if it.next() != Some("#define") {
            continue;
        }
        let (Some(name), Some(value)) = (it.next(), it.next()) else { continue };
        let v = value.trim_end_matches(['u', 'U']);
        let parsed = match v.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => v.parse().ok(),
        };
        if let Some(n) = parsed {
            defs.insert(name.to_owned(), n);
        }
    }
    defs
}

#[test]
fn c_header_matches_the_demo_protocol() {
    let h = header();
    let get = |name: &str| *h.get(name).unwrap_or_else(|| panic!("ntcomm_c.h has no numeric #define {name}"));
    assert_eq!(get("NTCOMM_C_IOCTL_ECHO_BUFFERED"), u64::from(demo::ECHO_BUFFERED.code.0));
    assert_eq!(get("NTCOMM_C_IOCTL_COMPARE_IN_DIRECT"), u64::from(demo::COMPARE_IN_DIRECT.code.0));
    assert_eq!(get("NTCOMM_C_IOCTL_ECHO_OUT_DIRECT"), u64::from(demo::ECHO_OUT_DIRECT.code.0));
    assert_eq!(get("NTCOMM_C_IOCTL_ECHO_NEITHER"), u64::from(demo::ECHO_NEITHER.code.0));
    assert_eq!(get("NTCOMM_C_MAX_ECHO"), demo::MAX_ECHO as u64);
    assert_eq!(get("NTCOMM_C_MAX_MESSAGE"), demo::MAX_MESSAGE as u64);
    assert_eq!(get("NTCOMM_C_QUEUE_CAPACITY"), demo::QUEUE_CAPACITY as u64);
    // The C-only queue-length query: a customer code that the demo does not use.
    let queued = ControlCode::custom(demo::DEVICE_TYPE, 0xff, Method::Buffered, Access::ANY);
    assert_eq!(get("NTCOMM_C_IOCTL_QUEUED"), u64::from(queued.0));
    assert_eq!(queued, ControlCode::new(DeviceType(0x8e7c), 0x8ff, Method::Buffered, Access::ANY));
    for ioctl in [demo::GET_STATS.code, demo::ECHO_BUFFERED.code, demo::PORT_ASK.code, demo::USER_COPY_PROBE.code] {
        assert_ne!(ioctl, queued);
    }
}
