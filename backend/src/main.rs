//! The `sightline` binary; everything it does is in [`sightline::cli`].

fn main() -> std::process::ExitCode {
    sightline::cli::main()
}
