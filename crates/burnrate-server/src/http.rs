//! Serving a router on a listener: what `axum::serve` does, plus a bound on silent clients,
//! which `axum::serve` leaves out (it gives hyper no timer). Without it a client that
//! connects and sends nothing, sends a request head a byte at a time, or leaves a keep-alive
//! connection idle holds a connection and its descriptor for as long as it likes.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::serve::Listener;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpStream;

/// How often an HTTP/2 client connection is pinged, and how long its answer may take before
/// the connection is taken for dead.
const HTTP2_PING: (Duration, Duration) = (Duration::from_secs(60), Duration::from_secs(20));

/// Serves `app` on `listener` (HTTP/1.1 and HTTP/2, chosen per connection) until `stop`
/// resolves, then stops accepting and returns the open connections, to be given a grace
/// period with [`GracefulShutdown::shutdown`].
///
/// With `header_read_timeout` (`None`: no bound), a connection is closed when its client
/// sends nothing that long after connecting, or takes that long to send an HTTP/1 request
/// head (or to start the next on a keep-alive connection). HTTP/2 connections are pinged
/// and closed when their peer stops answering.
pub async fn serve<L>(
    mut listener: L,
    app: Router,
    header_read_timeout: Option<Duration>,
    stop: impl Future<Output = ()>,
) -> GracefulShutdown
where
    L: Listener<Io = TcpStream>,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    // No `enable_connect_protocol` (axum::serve sets it for WebSockets over HTTP/2, which
    // nothing here serves).
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(HTTP2_PING.0)
        .keep_alive_timeout(HTTP2_PING.1);
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
        let builder = builder.clone();
        let watcher = connections.watcher();
        tokio::spawn(async move {
            if !first_bytes(&io, header_read_timeout).await {
                return;
            }
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
            if let Err(error) = watcher.watch(connection).await {
                tracing::trace!(%error, "connection ended with an error");
            }
        });
    }
    connections
}

/// Whether the client sent something within `timeout`: hyper reads the first bytes to tell
/// HTTP/1 from HTTP/2 without any bound, and its header read timeout starts only after that.
async fn first_bytes(io: &TcpStream, timeout: Option<Duration>) -> bool {
    match timeout {
        None => true,
        // A peek, not `readable()`, which may report readiness before any byte came.
        Some(timeout) => matches!(
            tokio::time::timeout(timeout, io.peek(&mut [0; 1])).await,
            Ok(Ok(1))
        ),
    }
}
