//! One shutdown root for a binary: the first SIGTERM or SIGINT cancels the token that every
//! task watches; a second one exits at once.

use tokio_util::sync::CancellationToken;

/// Exit status after a second signal (128 + SIGINT).
pub const FORCED_EXIT: i32 = 130;

/// Waits for SIGTERM or SIGINT and cancels `token`; on the next one, exits the process.
pub async fn on_signals(token: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("Cannot install signal handlers");
        return;
    };
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tracing::info!("Signal received; stopping (send again to exit at once)");
    token.cancel();
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    std::process::exit(FORCED_EXIT);
}

/// Logs to stderr, filtered by `STOREFLEET_LOG` (tracing's `EnvFilter` syntax), else by
/// `default`.
pub fn init_logging(default: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STOREFLEET_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Prints `error: ...` and every cause, one per line, to stderr.
pub fn print_error(program: &str, e: &(dyn std::error::Error + 'static)) {
    eprintln!("{program}: error: {e}");
    let mut source = e.source();
    while let Some(cause) = source {
        eprintln!("  caused by: {cause}");
        source = cause.source();
    }
}
