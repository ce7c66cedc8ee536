//! Compiles bpf/steer.bpf.c with clang (-target bpf) and generates its libbpf-rs skeleton into $OUT_DIR, when the
//! `af-xdp` feature (the default) asks for the AF_XDP layer; the sans-IO core alone needs nothing built.

use std::process::ExitCode;

#[cfg(not(feature = "af-xdp"))]
fn main() -> ExitCode {
    ExitCode::SUCCESS
}

#[cfg(feature = "af-xdp")]
fn main() -> ExitCode {
    skeleton::build()
}

#[cfg(feature = "af-xdp")]
mod skeleton {
    use std::env;
    use std::path::PathBuf;
    use std::process::ExitCode;

    use libbpf_cargo::SkeletonBuilder;

    const SRC: &str = "bpf/steer.bpf.c";

    pub fn build() -> ExitCode {
        println!("cargo:rerun-if-changed={SRC}");
        let Some(out_dir) = env::var_os("OUT_DIR") else {
            eprintln!("build.rs: OUT_DIR is not set (run through cargo)");
            return ExitCode::FAILURE;
        };
        let out = PathBuf::from(out_dir).join("steer.skel.rs");
        // Debian keeps asm/types.h under the multiarch directory, which clang does not search for -target bpf.
        let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into());
        let multiarch = format!("-I/usr/include/{arch}-linux-gnu");
        let result = SkeletonBuilder::new()
            .source(SRC)
            .clang_args([multiarch.as_str(), "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter"])
            .build_and_generate(&out);
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("build.rs: compiling {SRC} failed: {e:#}");
                eprintln!("build.rs: needs clang, llvm and the kernel UAPI headers: run scripts/install-deps.sh");
                ExitCode::FAILURE
            }
        }
    }
}
