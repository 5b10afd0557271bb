//! The layer split of a call's request (prompt / tool / memory), tokenised off the critical
//! path: small bodies on the call's own task once the request is on its way upstream (no
//! thread hand-off), large ones on the blocking pool (they take milliseconds and would stall
//! the runtime's worker).

use burnrate_model::Layers;
use burnrate_wire::{Api, LayerEstimate, Metered, WireError};
use bytes::Bytes;
use tokio::task::JoinHandle;

/// Bodies up to this size are tokenised on the call's task (tens of microseconds at most).
const INLINE_BYTES: usize = 16 * 1024;

/// Where a call's layer estimate stands.
pub enum LayerWork {
    /// Not started: tokenised by [`LayerWork::run_inline`].
    Inline(Api, Bytes),
    /// Tokenising on the blocking pool.
    Pending(JoinHandle<Result<LayerEstimate, WireError>>),
    /// Done.
    Done(Result<LayerEstimate, WireError>),
}

impl LayerWork {
    /// Starts the estimate of `body`: on the blocking pool at once when it is large.
    pub fn start(api: Api, body: Bytes) -> LayerWork {
        if body.len() <= INLINE_BYTES {
            return LayerWork::Inline(api, body);
        }
        LayerWork::Pending(tokio::task::spawn_blocking(move || {
            burnrate_wire::layers::estimate(api, &body)
        }))
    }

    /// Tokenises a small body now (call it while the upstream works on the request).
    pub fn run_inline(self) -> LayerWork {
        match self {
            LayerWork::Inline(api, body) => {
                LayerWork::Done(burnrate_wire::layers::estimate(api, &body))
            }
            other => other,
        }
    }

    /// The estimate scaled to what the provider counted; `None` when the body could not be
    /// split.
    pub async fn finish(self, metered: &Metered) -> Option<Layers> {
        let estimate = match self.run_inline() {
            LayerWork::Done(estimate) => estimate,
            LayerWork::Pending(task) => task.await.ok()?,
            LayerWork::Inline(..) => return None,
        };
        match estimate {
            Ok(estimate) => {
                Some(estimate.scale_to(metered.usage.input_tokens, metered.usage.output_tokens))
            }
            Err(error) => {
                tracing::debug!(%error, "no layer split for this request");
                None
            }
        }
    }
}
