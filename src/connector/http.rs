//! A minimal HTTP/1.1 client over one established stream (the TLS session to an EMS).
//!
//! It sends one request at a time on the same connection (`Connection: keep-alive`),
//! with the `Host` header and the headers that identify this FortiGate, and reads the
//! status line, the headers and a `Content-Length` body. That is all the EMS API needs;
//! chunked bodies are refused rather than misread. Timeouts belong to the caller, which
//! wraps each [`HttpClient::request`] in its own deadline.
//!
//! Data enters as a stream plus the header values; it leaves as [`Response`]s.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bound on a response's status line and headers; an EMS answer is a few hundred bytes.
const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Bound on a response body; the largest EMS answer (malware hashes) stays far below.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Bytes asked of the stream per read.
const READ_CHUNK: usize = 4 * 1024;

/// Why an HTTP exchange failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("connection closed before the response was complete")]
    Closed,
    #[error("the EMS closed the connection after the previous answer")]
    NotReusable,
    #[error("header {0} would carry a line break")]
    BadHeaderValue(String),
    #[error("malformed response: {0}")]
    Malformed(String),
    #[error("response headers exceed {MAX_HEADER_BYTES} bytes")]
    HeadersTooLarge,
    #[error("response body exceeds {MAX_BODY_BYTES} bytes")]
    BodyTooLarge,
}

/// One HTTP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Response {
    pub status: u16,
    /// Header names lowercase, values trimmed, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (lowercase).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP/1.1 client bound to one connection.
pub(crate) struct HttpClient<S> {
    stream: S,
    /// Bytes read from the stream and not yet consumed by a response.
    pending: Vec<u8>,
    /// `Host` first, then the identity headers, sent with every request.
    headers: Vec<(String, String)>,
    /// False once the server said `Connection: close` or ended a body at EOF.
    reusable: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> HttpClient<S> {
    /// A client on `stream` that sends `Host: host` and `headers` with each request.
    pub(crate) fn new(stream: S, host: &str, headers: &[(&str, &str)]) -> Result<Self, HttpError> {
        let mut all = vec![("Host".to_owned(), host.to_owned())];
        all.extend(headers.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())));
        if let Some((name, _)) = all.iter().find(|(_, v)| v.contains(['\r', '\n'])) {
            return Err(HttpError::BadHeaderValue(name.clone()));
        }
        Ok(HttpClient {
            stream,
            pending: Vec::new(),
            headers: all,
            reusable: true,
        })
    }

    /// Sends `method path` with no body and reads the whole response.
    pub(crate) async fn request(&mut self, method: &str, path: &str) -> Result<Response, HttpError> {
        if !self.reusable {
            return Err(HttpError::NotReusable);
        }
        let mut head = format!("{method} {path} HTTP/1.1\r\n");
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("Accept: application/json\r\nConnection: keep-alive\r\n");
        if matches!(method, "POST" | "PUT" | "PATCH") {
            head.push_str("Content-Length: 0\r\n");
        }
        head.push_str("\r\n");
        self.stream.write_all(head.as_bytes()).await?;
        self.stream.flush().await?;
        self.read_response().await
    }

    /// Gives the stream back, for a polite TLS close.
    pub(crate) fn into_inner(self) -> S {
        self.stream
    }

    async fn read_response(&mut self) -> Result<Response, HttpError> {
        let head_end = loop {
            if let Some(at) = find(&self.pending, b"\r\n\r\n") {
                break at;
            }
            if self.pending.len() > MAX_HEADER_BYTES {
                return Err(HttpError::HeadersTooLarge);
            }
            if self.fill().await? == 0 {
                return Err(HttpError::Closed);
            }
        };
        let head = String::from_utf8(self.pending[..head_end].to_vec())
            .map_err(|_| HttpError::Malformed("headers are not UTF-8".to_owned()))?;
        self.pending.drain(..head_end + 4);
        let (status, headers) = parse_head(&head)?;
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };

        if response
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
        {
            self.reusable = false;
        }
        if response
            .header("transfer-encoding")
            .is_some_and(|v| !v.eq_ignore_ascii_case("identity"))
        {
            self.reusable = false;
            return Err(HttpError::Malformed(
                "chunked bodies are not supported".to_owned(),
            ));
        }
        let bodiless = (100..200).contains(&status) || status == 204 || status == 304;
        match response.header("content-length") {
            _ if bodiless => {}
            Some(value) => {
                let length: usize = value
                    .parse()
                    .map_err(|_| HttpError::Malformed(format!("Content-Length {value:?}")))?;
                if length > MAX_BODY_BYTES {
                    return Err(HttpError::BodyTooLarge);
                }
                while self.pending.len() < length {
                    if self.fill().await? == 0 {
                        return Err(HttpError::Closed);
                    }
                }
                response.body = self.pending.drain(..length).collect();
            }
            None => {
                // Without a length the body runs to the end of the connection.
                self.reusable = false;
                while self.fill().await? > 0 {
                    if self.pending.len() > MAX_BODY_BYTES {
                        return Err(HttpError::BodyTooLarge);
                    }
                }
                response.body = std::mem::take(&mut self.pending);
            }
        }
        Ok(response)
    }

    /// Reads once from the stream into `pending`; 0 means the peer closed.
    async fn fill(&mut self) -> Result<usize, HttpError> {
        let mut chunk = [0u8; READ_CHUNK];
        let n = match self.stream.read(&mut chunk).await {
            Ok(n) => n,
            // A peer that closes without TLS close_notify has still ended the stream.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e.into()),
        };
        self.pending.extend_from_slice(&chunk[..n]);
        Ok(n)
    }
}

/// Parses `HTTP/1.1 200 OK` and the header lines after it.
fn parse_head(head: &str) -> Result<(u16, Vec<(String, String)>), HttpError> {
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::Malformed(format!("status line {status_line:?}")));
    }
    let status = parts
        .next()
        .and_then(|code| code.parse::<u16>().ok())
        .filter(|code| (100..1000).contains(code))
        .ok_or_else(|| HttpError::Malformed(format!("status line {status_line:?}")))?;
    let headers = lines
        .map(|line| {
            line.split_once(':')
                .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
                .ok_or_else(|| HttpError::Malformed(format!("header line {line:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((status, headers))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncBufReadExt, BufReader, duplex};

    use super::*;

    /// Reads one request head from the server side of a duplex pipe.
    async fn read_request<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await.expect("reads");
            let line = line.trim_end().to_owned();
            if line.is_empty() {
                return lines;
            }
            lines.push(line);
        }
    }

    #[tokio::test]
    async fn two_requests_share_one_connection() {
        let (client_end, server_end) = duplex(64 * 1024);
        let server = tokio::spawn(async move {
            let (read, mut write) = tokio::io::split(server_end);
            let mut reader = BufReader::new(read);
            let first = read_request(&mut reader).await;
            // Two answers in one write: the client must split them by Content-Length.
            write
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}\
                      HTTP/1.1 403 Forbidden\r\ncontent-length: 11\r\n\r\n{\"error\":1}",
                )
                .await
                .expect("writes");
            let second = read_request(&mut reader).await;
            (first, second)
        });
        let mut client = HttpClient::new(client_end, "ems.lab.example", &[("X-FortiGate-Serial", "FGVM01")])
            .expect("client");
        let first = client.request("GET", "/a").await.expect("first answer");
        assert_eq!((first.status, first.body.as_slice()), (200, b"{}".as_slice()));
        let second = client.request("POST", "/b").await.expect("second answer");
        assert_eq!(second.status, 403);
        assert_eq!(second.body, b"{\"error\":1}");
        let (first_head, second_head) = server.await.expect("server");
        assert_eq!(first_head[0], "GET /a HTTP/1.1");
        assert!(first_head.contains(&"Host: ems.lab.example".to_owned()));
        assert!(first_head.contains(&"X-FortiGate-Serial: FGVM01".to_owned()));
        assert!(first_head.contains(&"Connection: keep-alive".to_owned()));
        assert_eq!(second_head[0], "POST /b HTTP/1.1");
        assert!(second_head.contains(&"Content-Length: 0".to_owned()));
    }

    #[tokio::test]
    async fn truncated_and_malformed_answers_are_errors() {
        /// Answers the first request with `reply`, then hangs up.
        fn answer_once(reply: &'static [u8]) -> tokio::io::DuplexStream {
            let (client_end, server_end) = duplex(1024);
            tokio::spawn(async move {
                let (read, mut write) = tokio::io::split(server_end);
                read_request(&mut BufReader::new(read)).await;
                write.write_all(reply).await.expect("writes");
            });
            client_end
        }
        let truncated = answer_once(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
        let mut client = HttpClient::new(truncated, "h", &[]).expect("client");
        assert!(matches!(client.request("GET", "/").await, Err(HttpError::Closed)));

        let garbage = answer_once(b"SSH-2.0-OpenSSH\r\n\r\n");
        let mut client = HttpClient::new(garbage, "h", &[]).expect("client");
        assert!(matches!(
            client.request("GET", "/").await,
            Err(HttpError::Malformed(_))
        ));

        let unbounded = answer_once(b"HTTP/1.1 200 OK\r\n\r\n{\"data\":{}}");
        let mut client = HttpClient::new(unbounded, "h", &[]).expect("client");
        let response = client
            .request("GET", "/")
            .await
            .expect("a body that runs to the end");
        assert_eq!(response.body, b"{\"data\":{}}");
        assert!(matches!(
            client.request("GET", "/").await,
            Err(HttpError::NotReusable)
        ));
    }

    #[test]
    fn header_values_cannot_smuggle_lines() {
        let (client_end, _server_end) = duplex(16);
        let result = HttpClient::new(client_end, "h", &[("X-FortiGate-Hostname", "a\r\nX: y")]);
        assert!(matches!(result, Err(HttpError::BadHeaderValue(name)) if name == "X-FortiGate-Hostname"));
    }
}
