//! `sightline probe`: asks the server this configuration starts whether it is ready
//! (`GET /readyz` on its listen address), for container health checks. The runtime image has
//! no HTTP client of its own, so the server's binary is the probe.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `/readyz` waits up to 2 s for PostgreSQL and 2 s for Redis; this leaves room for both.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Far more than a readiness answer; a longer one is not the server's.
const MAX_ANSWER: u64 = 64 * 1024;

/// Why the server is not ready, in words for the health check's log.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("no answer from {0} within {1:?}")]
    TimedOut(SocketAddr, Duration),
    #[error("cannot reach {0}: {1}")]
    Unreachable(SocketAddr, std::io::Error),
    #[error("{0} answered something that is not HTTP")]
    NotHttp(SocketAddr),
    #[error("{address} answered {status}: {body}")]
    Status {
        address: SocketAddr,
        status: u16,
        body: String,
    },
}

/// Asks the server listening on `listen` (loopback when it listens on every interface) for
/// `/readyz`; returns its answer's body when it is 200.
pub async fn readiness(listen: SocketAddr) -> Result<String, NotReady> {
    let address = reachable(listen);
    tokio::time::timeout(TIMEOUT, ask(address))
        .await
        .map_err(|_| NotReady::TimedOut(address, TIMEOUT))?
}

/// A server bound to every interface is reached on the loopback address of its family.
fn reachable(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), listen.port())
        }
        _ => listen,
    }
}

async fn ask(address: SocketAddr) -> Result<String, NotReady> {
    let unreachable = |err| NotReady::Unreachable(address, err);
    let mut stream = TcpStream::connect(address).await.map_err(unreachable)?;
    let request = format!("GET /readyz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(unreachable)?;
    let mut answer = Vec::new();
    stream
        .take(MAX_ANSWER)
        .read_to_end(&mut answer)
        .await
        .map_err(unreachable)?;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or(NotReady::NotHttp(address))?;
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.trim().to_owned())
        .unwrap_or_default();
    if status == 200 {
        Ok(body)
    } else {
        Err(NotReady::Status {
            address,
            status,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_on_every_interface_is_asked_on_loopback() {
        let any_v4: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let any_v6: SocketAddr = "[::]:8080".parse().unwrap();
        let one: SocketAddr = "10.1.2.3:9000".parse().unwrap();
        assert_eq!(reachable(any_v4), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(reachable(any_v6), "[::1]:8080".parse().unwrap());
        assert_eq!(reachable(one), one);
    }
}
