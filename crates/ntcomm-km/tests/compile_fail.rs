//! Typed IOCTL handlers are checked against their declarations at compile
//! time: a handler whose input or output type disagrees with the
//! `Ioctl<I, O>` it serves does not build (`tests/compile-fail/*.rs`, with
//! the expected errors beside them). Runs on the build host: the fixtures
//! are only type-checked, never linked.

#[test]
fn handlers_that_disagree_with_their_declaration_do_not_compile() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/compile-fail/*.rs");
}
