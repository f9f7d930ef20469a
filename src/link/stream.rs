//! [`LinkStream`]: a TCP stream under its link's faults.
//!
//! A cut link leaves every read and write pending until the link heals: bytes the peer
//! sent meanwhile wait in the kernel, as TCP retransmits would deliver them after a real
//! outage. A slow link reads on at full speed but hands each chunk out only when its
//! time has come, so the delay adds latency without limiting throughput; the delay
//! counts both ways, since only the dialing side holds the stream.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::faults::{LinkFault, LinkWatch};

/// How much one read takes from the socket while a slow link holds what it read.
const CHUNK: usize = 16 * 1024;

type Healed = Pin<Box<dyn Future<Output = ()> + Send + Sync>>;

/// A chunk read from the socket and when it may be handed out; an empty chunk is the end
/// of the stream.
struct Held {
    due: Instant,
    bytes: Vec<u8>,
    taken: usize,
}

pub struct LinkStream<S> {
    inner: S,
    link: LinkWatch,
    /// Set while a cut link waits to heal.
    healed: Option<Healed>,
    held: VecDeque<Held>,
    /// Wakes the reader when the first held chunk is due.
    timer: Option<Pin<Box<Sleep>>>,
    /// The inner stream has ended (a held empty chunk says when to tell the reader).
    eof: bool,
}

impl<S> LinkStream<S> {
    pub(super) fn new(inner: S, link: LinkWatch) -> LinkStream<S> {
        LinkStream {
            inner,
            link,
            healed: None,
            held: VecDeque::new(),
            timer: None,
            eof: false,
        }
    }

    /// `Ready` when the link is not cut; otherwise pending until it heals.
    fn poll_not_cut(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.link.fault() != Some(LinkFault::Cut) {
            self.healed = None;
            return Poll::Ready(());
        }
        let healed = self.healed.get_or_insert_with(|| Box::pin(self.link.healed()));
        ready!(healed.as_mut().poll(cx));
        self.healed = None;
        Poll::Ready(())
    }

    /// The delay of the link now, both ways (at most twice [`LinkFault::MAX_DELAY_MS`]);
    /// zero when it is healthy.
    fn delay(&self) -> Duration {
        match self.link.fault() {
            Some(LinkFault::Delay(delay)) => delay.min(Duration::from_millis(LinkFault::MAX_DELAY_MS)) * 2,
            _ => Duration::ZERO,
        }
    }
}

impl<S: AsyncRead + Unpin> LinkStream<S> {
    /// Reads what the socket has into held chunks, each due `delay` from now, until the
    /// socket has nothing more (which registers the waker) or has ended.
    fn fill_held(&mut self, cx: &mut Context<'_>, delay: Duration) -> io::Result<()> {
        while !self.eof {
            let mut bytes = vec![0; CHUNK];
            let mut buf = ReadBuf::new(&mut bytes);
            match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) => {
                    let read = buf.filled().len();
                    bytes.truncate(read);
                    self.eof = read == 0;
                    self.held.push_back(Held {
                        due: Instant::now() + delay,
                        bytes,
                        taken: 0,
                    });
                }
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => break,
            }
        }
        Ok(())
    }

    /// Hands out the first held chunk if it is due; otherwise arms the timer.
    fn poll_held(&mut self, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let Some(first) = self.held.front_mut() else {
            // Pending on the socket, whose waker `fill_held` registered; or ended.
            return if self.eof {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            };
        };
        if first.due > Instant::now() {
            let timer = self
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(first.due)));
            timer.as_mut().reset(first.due);
            ready!(timer.as_mut().poll(cx));
        }
        self.timer = None;
        let rest = &first.bytes[first.taken..];
        let n = rest.len().min(out.remaining());
        out.put_slice(&rest[..n]);
        first.taken += n;
        if first.taken == first.bytes.len() {
            self.held.pop_front();
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for LinkStream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_not_cut(cx));
        let delay = this.delay();
        if delay.is_zero() && this.held.is_empty() {
            return Pin::new(&mut this.inner).poll_read(cx, out);
        }
        this.fill_held(cx, delay)?;
        this.poll_held(cx, out)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for LinkStream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_not_cut(cx));
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_not_cut(cx));
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Closing is local: a cut link does not hold up dropping a connection.
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
