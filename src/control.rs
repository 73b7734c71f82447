//! The control socket `ternctl` talks to: one JSON request per line, one
//! JSON reply per line. Replies are built from snapshots (peer status cells,
//! RIB queries answered between batches), so the socket never blocks the RIB.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tracing::warn;

use crate::daemon::Shared;

/// A request from ternctl.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "command", rename_all = "lowercase")]
pub enum Request {
    Peers,
    Routes { prefix: Option<String> },
    Fib,
    Status,
}

/// Binds the socket (replacing a stale one), spawns the task serving it and returns.
pub async fn serve(path: PathBuf, shared: Arc<Shared>) -> std::io::Result<()> {
    serve_unix(path, shared, "control socket", client)
}

/// Binds a Unix socket at `path` (creating its directory, replacing a stale
/// socket) and runs `handler` for every connection, backing off after accept
/// errors. Shared by the ternctl and BIRD-compatible sockets.
pub fn serve_unix<F, Fut>(path: PathBuf, shared: Arc<Shared>, what: &'static str, handler: F) -> std::io::Result<()>
where
    F: Fn(UnixStream, Arc<Shared>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let fut = handler(stream, shared.clone());
                    tokio::spawn(async move {
                        if let Err(e) = fut.await {
                            tracing::debug!("{what} client: {e}");
                        }
                    });
                }
                Err(e) => {
                    warn!("{what} accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(())
}

async fn client(stream: UnixStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut lines = BufReader::new(rd).lines();
    while let Some(line) = lines.next_line().await? {
        let reply = match serde_json::from_str::<Request>(&line) {
            Ok(req) => match shared.answer(req).await {
                Ok(v) => json!({ "ok": v }),
                Err(e) => json!({ "error": e }),
            },
            Err(e) => json!({ "error": format!("bad request: {e}") }),
        };
        let mut text = reply.to_string();
        text.push('\n');
        wr.write_all(text.as_bytes()).await?;
    }
    Ok(())
}

/// Sends one request and returns the `ok` value (used by ternctl).
pub async fn request(path: &Path, req: &Request) -> Result<Value, String> {
    let stream = UnixStream::connect(path)
        .await
        .map_err(|e| format!("cannot connect to {}: {e} (is ternd running?)", path.display()))?;
    let (rd, mut wr) = stream.into_split();
    let mut line = serde_json::to_string(req).map_err(|e| e.to_string())?;
    line.push('\n');
    wr.write_all(line.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut lines = BufReader::new(rd).lines();
    let reply = lines
        .next_line()
        .await
        .map_err(|e| e.to_string())?
        .ok_or("ternd closed the connection without a reply")?;
    let mut v: Value = serde_json::from_str(&reply).map_err(|e| format!("bad reply: {e}"))?;
    if let Some(err) = v.get("error") {
        return Err(err.as_str().unwrap_or("error").to_string());
    }
    Ok(v["ok"].take())
}
