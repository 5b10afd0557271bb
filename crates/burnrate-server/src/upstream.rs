//! Connections to the providers: HTTP/2 where a provider speaks it, with another connection
//! opened whenever the calls in flight fill the ones there are.
//!
//! A reqwest client (hyper-util's pool under it) keeps a single HTTP/2 connection per host
//! and queues every call beyond the server's concurrent-stream limit behind streams that can
//! last minutes (hyperium/hyper#2197). So each provider has *lanes*: each lane is a client of
//! its own, hence a connection of its own, and carries at most [`STREAMS_PER_LANE`] calls at
//! once; a call takes the first lane with room, and a new lane is opened when none has.
//! Written here because no HTTP client crate pools this way.
//!
//! Over HTTP/2 a stream costs the gateway a fraction of what an HTTP/1.1 connection does
//! (hyper's 8 KB read and write buffers, its request channel and a socket per call), which
//! is most of the memory an open stream holds (BENCHMARKS.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::routing::HttpVersion;

/// Calls one lane carries at once over HTTP/2. RFC 9113 §6.5.2 recommends that servers
/// allow at least 100 concurrent streams; a server allowing fewer makes the calls beyond
/// its limit wait on their connection for a stream, as they would with one connection.
pub const STREAMS_PER_LANE: usize = 100;

/// Idle connections close after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// How long establishing a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often an HTTP/2 connection with calls open but nothing received is pinged, so a
/// connection that died silently fails its calls instead of holding them until the upstream
/// timeout. Not shorter: a call can be silent for minutes while the model thinks, and
/// servers limit how often they may be pinged.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(60);

/// How long a ping may go unanswered before the connection is closed.
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// How much of one call's answer the provider may send before the gateway reads it.
const STREAM_WINDOW: u32 = 1 << 20;

/// How much of all its calls' answers: every call's window at once, so a call whose client
/// stopped reading holds back its own stream, never the other calls on the connection.
const CONNECTION_WINDOW: u32 = STREAM_WINDOW * STREAMS_PER_LANE as u32;

/// One provider's lanes. The first opens with the first call.
#[derive(Debug, Default)]
pub struct Lanes {
    lanes: ArcSwap<Vec<Arc<LaneState>>>,
    /// Held while a lane is added, so two calls finding every lane full add one, not two.
    growing: std::sync::Mutex<()>,
}

#[derive(Debug)]
struct LaneState {
    client: reqwest::Client,
    in_flight: AtomicUsize,
}

impl Lanes {
    /// A place for one call to a provider spoken to as `version`, on the first lane with
    /// room, or on a new lane when none has. Fails only when no client can be built (no
    /// TLS backend).
    pub fn take(&self, version: HttpVersion) -> Result<Lane, reqwest::Error> {
        // Over HTTP/1.1 a client opens a connection per call in flight anyway: one lane.
        let per_lane = match version {
            HttpVersion::Http1 => usize::MAX,
            HttpVersion::Auto | HttpVersion::Http2 => STREAMS_PER_LANE,
        };
        self.take_within(version, per_lane)
    }

    fn take_within(&self, version: HttpVersion, per_lane: usize) -> Result<Lane, reqwest::Error> {
        if let Some(lane) = self.first_with_room(per_lane) {
            return Ok(lane);
        }
        let _growing = self
            .growing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Another call may have added a lane (or ended one) while this one waited.
        if let Some(lane) = self.first_with_room(per_lane) {
            return Ok(lane);
        }
        let state = Arc::new(LaneState {
            client: client(version)?,
            in_flight: AtomicUsize::new(1),
        });
        let mut lanes = Vec::clone(&self.lanes.load());
        lanes.push(Arc::clone(&state));
        self.lanes.store(Arc::new(lanes));
        Ok(Lane { state })
    }

    /// How many lanes are open and how many calls are on them.
    pub fn load(&self) -> LaneLoad {
        let lanes = self.lanes.load();
        LaneLoad {
            lanes: lanes.len(),
            in_flight: lanes
                .iter()
                .map(|state| state.in_flight.load(Ordering::Acquire))
                .sum(),
        }
    }

    /// Takes a place on the first lane with room: the earliest lanes stay busy and the
    /// later ones fall idle, so their connections close after a burst.
    fn first_with_room(&self, per_lane: usize) -> Option<Lane> {
        let lanes = self.lanes.load();
        lanes.iter().find_map(|state| {
            state
                .in_flight
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < per_lane).then_some(n + 1)
                })
                .ok()
                .map(|_| Lane {
                    state: Arc::clone(state),
                })
        })
    }
}

/// How busy a provider's lanes are, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LaneLoad {
    /// Lanes opened so far: they stay once opened, their connections closing when idle
    /// (over HTTP/2 a lane is one connection; over HTTP/1.1 one lane holds a connection
    /// per call).
    pub lanes: usize,
    /// Calls holding a place on them: sent or about to be, their answers not yet read.
    pub in_flight: usize,
}

/// A call's place on a lane, given back when dropped.
pub struct Lane {
    state: Arc<LaneState>,
}

impl Lane {
    /// The lane's client.
    pub fn client(&self) -> &reqwest::Client {
        &self.state.client
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        self.state.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One lane's client. Redirects are not followed: reqwest would resend the call, and with it
/// a provider key in a header it does not know to strip (Anthropic's `x-api-key`), to
/// wherever the upstream points; a redirect is answered as the upstream's failure instead.
fn client(version: HttpVersion) -> Result<reqwest::Client, reqwest::Error> {
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .pool_idle_timeout(IDLE_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .http2_keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
        .http2_initial_stream_window_size(STREAM_WINDOW)
        .http2_initial_connection_window_size(CONNECTION_WINDOW);
    match version {
        HttpVersion::Http1 => builder.http1_only(),
        HttpVersion::Auto => builder,
        HttpVersion::Http2 => builder.http2_prior_knowledge(),
    }
    .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lane_opens_when_the_others_are_full_and_places_are_given_back() {
        let lanes = Lanes::default();
        let take = || lanes.take_within(HttpVersion::Http2, 2).unwrap();
        let a = take();
        let b = take();
        assert!(Arc::ptr_eq(&a.state, &b.state), "the first lane had room");
        let c = take();
        assert!(
            !Arc::ptr_eq(&a.state, &c.state),
            "a full lane takes no more"
        );
        assert_eq!(lanes.lanes.load().len(), 2);
        drop(b);
        let d = take();
        assert!(
            Arc::ptr_eq(&a.state, &d.state),
            "a place given back is taken again, on the earliest lane"
        );
        assert_eq!(
            lanes.lanes.load().len(),
            2,
            "no lane opened while one had room"
        );
        drop((a, c, d));
        assert!(
            lanes
                .lanes
                .load()
                .iter()
                .all(|state| state.in_flight.load(Ordering::Acquire) == 0)
        );
    }

    #[test]
    fn concurrent_calls_never_overfill_a_lane() {
        let lanes = Arc::new(Lanes::default());
        let held: Vec<Lane> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    let lanes = Arc::clone(&lanes);
                    scope.spawn(move || {
                        (0..25)
                            .map(|_| lanes.take_within(HttpVersion::Http2, 3).unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|worker| worker.join().unwrap())
                .collect()
        });
        let states = lanes.lanes.load();
        for state in states.iter() {
            assert!(state.in_flight.load(Ordering::Acquire) <= 3);
        }
        let total: usize = states
            .iter()
            .map(|state| state.in_flight.load(Ordering::Acquire))
            .sum();
        assert_eq!(total, held.len());
        assert_eq!(
            states.len(),
            100usize.div_ceil(3),
            "every lane filled first"
        );
    }
}
