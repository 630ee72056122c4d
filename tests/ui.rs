//! Compile-fail tests: each protocol mistake is a compile error with a
//! message a newcomer understands. The `.stderr` snapshots were made with
//! rustc 1.95; other compilers word things differently, so the suite runs
//! only there. Regenerate with `TRYBUILD=overwrite` and read the diff.

#[rustversion::attr(not(stable(1.95)), ignore = "the .stderr snapshots are for rustc 1.95")]
#[test]
fn compile_fail_cases() {
    let cases = trybuild::TestCases::new();
    for dir in [
        "message",
        "handler",
        "middleware",
        "payload",
        "describe",
        "lock",
    ] {
        cases.compile_fail(format!("ui/{dir}/*.rs"));
    }
    cases.pass("ui/pass/*.rs");
}
