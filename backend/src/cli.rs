//! The `sightline` command line: `serve` (the default) runs the server, `migrate` applies the
//! database migrations and exits, `probe` asks a running server whether it is ready. In the
//! library so that the test suite can build the same command as a binary of its own (to kill
//! it with SIGKILL and start it again).

use crate::config::Settings;
use crate::startup::Application;
use std::process::ExitCode;

const USAGE: &str = "\
usage: sightline [serve | migrate | probe | help | version]

  serve     run the server (the default); migrations are applied first
  migrate   apply pending database migrations, then exit
  probe     ask the server this configuration runs (SIGHTLINE_LISTEN) whether it is ready
            (GET /readyz); exit status 0 if it is, 1 if not: a container health check

Configuration comes from the environment (DATABASE_URL, REDIS_URL, SIGHTLINE_LISTEN,
SIGHTLINE_DATA_DIR, SIGHTLINE_JWT_SECRET, ...) over an optional TOML file named by
SIGHTLINE_CONFIG (default ./sightline.toml). See README.md for every setting.";

enum Command {
    Serve,
    Migrate,
    Probe,
}

/// Runs the command named by the process arguments.
pub fn main() -> ExitCode {
    actix_web::rt::System::new().block_on(run())
}

async fn run() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] | ["serve"] => Command::Serve,
        ["migrate"] => Command::Migrate,
        ["probe"] => Command::Probe,
        ["help" | "--help" | "-h"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        ["version" | "--version" | "-V"] => {
            println!("sightline {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };

    crate::telemetry::init();
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(2);
        }
    };

    let outcome = match command {
        Command::Serve => serve(settings).await,
        Command::Migrate => migrate(settings).await,
        Command::Probe => probe(settings).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sightline: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    let embedded = settings.is_embedded_database();
    let data_dir = settings.data_dir.clone();
    let app = Application::build(settings).await?;
    let mut address = app.address();
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    if embedded {
        println!("Using the embedded database in {}", data_dir.display());
    }
    println!("Sightline is running: open http://{address}/");
    app.run_until_stopped().await?;
    Ok(())
}

async fn probe(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    let answer = crate::probe::readiness(settings.listen).await?;
    println!("{answer}");
    Ok(())
}

async fn migrate(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    let db = crate::storage::connect(&settings).await?;
    match crate::storage::migrate(&db).await? {
        crate::storage::Schema::Current => println!("Migrations applied."),
        crate::storage::Schema::Newer(later) => println!(
            "The database is ahead of this release (it has {}): nothing to apply.",
            later.join(", ")
        ),
    }
    Ok(())
}
