//! A local HTTP/1.1 server standing in for an AWS API the tests cannot reach on moto: it reads each
//! request whole (headers and body), records it, and answers with what `answer` makes of it: a status
//! and a JSON body, or `None` to drop the connection without a word (the request reached the
//! service, and its answer was lost).

#![allow(dead_code)] // each test file uses what it needs of it

use std::sync::{Arc, Mutex};

/// One request as the stand-in read it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The request line and headers, as text.
    pub head: String,
    /// The body.
    pub body: String,
}

/// What the stand-in answers a request with; `None` drops the connection.
pub type Answer = fn(&Seen) -> Option<(u16, String)>;

/// Starts the stand-in on 127.0.0.1; returns its URL and the requests it has read.
pub async fn start(answer: Answer) -> (String, Arc<Mutex<Vec<Seen>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if buf.len() < end + 4 + length {
                        continue;
                    }
                    let request = Seen {
                        head: text[..end].to_string(),
                        body: text[end + 4..].to_string(),
                    };
                    log.lock().unwrap().push(request.clone());
                    if let Some((status, body)) = answer(&request) {
                        let reply = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = stream.write_all(reply.as_bytes()).await;
                    }
                    // One request a connection: with no answer, the answer is lost.
                    return;
                }
            });
        }
    });
    (url, seen)
}
