#![cfg(windows)]
use ntcomm::rig;
use ntcomm_proto::demo;

#[test]
fn driver_answers_echo_and_stats() {
    let dev = rig::test_device();
    let mut out = [0u8; 5];
    let n = dev.ioctl(&demo::ECHO_BUFFERED, &b"hello"[..], &mut out[..]).unwrap();
    assert_eq!(&out[..n], b"hello");
    let stats = dev.ioctl_get(&demo::GET_STATS).unwrap();
    assert!(stats.open_handles >= 1, "{stats:?}");
}
