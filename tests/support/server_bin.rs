//! `sightline-server`: the `sightline` command, built as a binary of the test package so that
//! tests can run it as a separate process (see `support::process`).

fn main() -> std::process::ExitCode {
    sightline::cli::main()
}
