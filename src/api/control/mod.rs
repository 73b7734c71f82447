//! The control socket `ternctl` talks to: one JSON request per line, one
//! JSON reply per line (see [`proto`]). Replies are built from snapshots
//! (status cells, RIB queries answered between batches), so the socket never
//! blocks the RIB.

pub mod act;
pub mod answer;
pub mod proto;

use std::os::unix::net::UnixListener as StdUnixListener;
use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::unix::serve_unix;
use crate::registry::Registry;
use proto::{Request, Response};

/// Spawns the task serving the control socket (bound by `unix::bind`).
pub fn serve(listener: StdUnixListener, registry: Arc<Registry>) -> std::io::Result<tokio::task::JoinHandle<()>> {
    serve_unix(listener, registry, "control socket", client)
}

/// Serves `[control] read_only_socket`: `show …` answers, every command that
/// changes something refused.
pub fn serve_read_only(
    listener: StdUnixListener,
    registry: Arc<Registry>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    serve_unix(listener, registry, "read-only control socket", read_only_client)
}

fn line<T: Serialize>(result: Result<T, String>) -> String {
    let response = match result {
        Ok(v) => Response::Ok(v),
        Err(e) => Response::Error(e),
    };
    let mut text =
        serde_json::to_string(&response).unwrap_or_else(|e| format!("{{\"error\":\"cannot encode the reply: {e}\"}}"));
    text.push('\n');
    text
}

/// Whether a request changes the daemon (refused on the read-only socket).
fn changes_something(req: &Request) -> bool {
    matches!(req, Request::Shutdown { .. } | Request::Peer { .. } | Request::Reload)
}

async fn answer(registry: &Registry, text: &str, read_only: bool) -> String {
    let request = serde_json::from_str::<Request>(text);
    if read_only && request.as_ref().is_ok_and(changes_something) {
        return line::<()>(Err(
            "this socket is read-only ([control] read_only_socket); use the control socket".into(),
        ));
    }
    match request {
        Ok(Request::Peers) => line(answer::peers(registry).await),
        Ok(Request::Bfd) => line(Ok::<_, String>(registry.bfd_sessions().await)),
        Ok(Request::Routes { prefix }) => line(answer::routes(registry, prefix).await),
        Ok(Request::Fib) => line(answer::fib(registry).await),
        Ok(Request::Status) => line(answer::status(registry).await),
        Ok(Request::Shutdown { hard }) => line(Ok(answer::shutdown(registry, hard))),
        Ok(Request::Peer { name, action }) => line(act::peer(registry, &name, action).await),
        Ok(Request::Reload) => line(act::reload(registry).await),
        Ok(Request::PeerRoutes { name, advertised }) => line(answer::peer_routes(registry, &name, advertised).await),
        Err(e) => line::<()>(Err(format!("bad request: {e}"))),
    }
}

async fn client(stream: UnixStream, registry: Arc<Registry>) -> std::io::Result<()> {
    serve_client(stream, registry, false).await
}

async fn read_only_client(stream: UnixStream, registry: Arc<Registry>) -> std::io::Result<()> {
    serve_client(stream, registry, true).await
}

async fn serve_client(stream: UnixStream, registry: Arc<Registry>, read_only: bool) -> std::io::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut lines = BufReader::new(rd).lines();
    while let Some(text) = lines.next_line().await? {
        wr.write_all(answer(&registry, &text, read_only).await.as_bytes())
            .await?;
    }
    Ok(())
}

/// Sends one request and returns the typed reply (ternctl and the tests use it).
pub async fn request<T: DeserializeOwned>(path: &Path, req: &Request) -> Result<T, String> {
    let stream = UnixStream::connect(path)
        .await
        .map_err(|e| format!("cannot connect to {}: {e} (is ternd running?)", path.display()))?;
    let (rd, mut wr) = stream.into_split();
    let mut text = serde_json::to_string(req).map_err(|e| e.to_string())?;
    text.push('\n');
    wr.write_all(text.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut lines = BufReader::new(rd).lines();
    let reply = lines
        .next_line()
        .await
        .map_err(|e| e.to_string())?
        .ok_or("ternd closed the connection without a reply")?;
    match serde_json::from_str::<Response<T>>(&reply).map_err(|e| format!("bad reply: {e}"))? {
        Response::Ok(v) => Ok(v),
        Response::Error(e) => Err(e),
    }
}
