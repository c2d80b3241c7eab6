// SPDX-License-Identifier: MIT
// A Rust program recording one event by running `tel emit`.
//
//     rustc emit.rs && ./emit      (tel must be on PATH)
//
// Linking libtel through FFI works too (tel_emit and a #[repr(C)]
// tel_prop); running the command keeps the build free of C.
use std::process::{Command, Stdio};

fn emit(app: &str, event: &str, props: &[(&str, &str)]) {
    let mut cmd = Command::new("tel");
    cmd.args(["emit", "--app", app, event]);
    for (k, v) in props {
        // tel types a value that prints back as the same text: "42"
        // becomes an integer, "true" a boolean, anything else a string.
        cmd.arg(format!("{}={}", k, v));
    }
    // tel emit exits 0 even when nothing could be queued; a missing tel
    // is ignored too: telemetry never fails its host.
    let _ = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn main() {
    emit("example-rust", "example.ran", &[("lang", "rust"), ("answer", "42")]);
}
