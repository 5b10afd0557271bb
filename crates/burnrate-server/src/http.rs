//! Serving a router on a listener: what `axum::serve` does, plus the HTTP/1 header read
//! timeout, which `axum::serve` leaves off (it gives hyper no timer). Without it a client that
//! sends a request head a byte at a time, or leaves a keep-alive connection idle, holds a
//! connection and its descriptor for as long as it likes.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::serve::Listener;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;

/// Serves `app` on `listener` (HTTP/1.1 and HTTP/2, chosen per connection) until `stop`
/// resolves, then stops accepting and returns the open connections, to be given a grace
/// period with [`GracefulShutdown::shutdown`]. A connection whose client takes longer than
/// `header_read_timeout` to send a request head (or to start the next on a keep-alive
/// connection) is closed.
pub async fn serve<L>(
    mut listener: L,
    app: Router,
    header_read_timeout: Duration,
    stop: impl Future<Output = ()>,
) -> GracefulShutdown
where
    L: Listener,
    L::Io: Unpin,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let connections = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        // The listener waits out accept errors itself (a full descriptor table: a second).
        let io = tokio::select! {
            (io, _) = listener.accept() => io,
            () = &mut stop => break,
        };
        // A clone of a router with its state is a reference count: every connection shares
        // the one route table.
        let service = TowerToHyperService::new(app.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(io), service)
            .into_owned();
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::trace!(%error, "connection ended with an error");
            }
        });
    }
    connections
}
