//! Enter/exit hysteresis of one fence layer (beats or zones) of one unit.
//!
//! A unit enters fence F after `fixes` consecutive trusted fixes in F spanning at least
//! `dwell_ms`, and exits its current fence after as many consecutive fixes elsewhere (in no
//! fence, or in any other fences) spanning as long. A fix back in the current fence resets
//! both counts, so boundary jitter moves nothing. Times are backdated: an enter happens at the
//! first fix of the run that confirmed it, an exit at the first fix away. Hence an exit always
//! follows its enter by more than `dwell_ms`.

use crate::geofence::FenceIdx;
use crate::ping::EpochMillis;

use super::snapshot::{Reader, Writer};

/// How many fixes over how long confirm a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rule {
    /// Consecutive fixes (at least 1).
    pub(super) fixes: u32,
    /// Span from the first to the last of them, ms.
    pub(super) dwell_ms: EpochMillis,
}

/// Consecutive fixes: how many, and the first and last fix time.
#[derive(Debug, Clone, Copy)]
struct Run {
    count: u32,
    first_ms: EpochMillis,
    last_ms: EpochMillis,
}

impl Run {
    const fn start(t: EpochMillis) -> Self {
        Self {
            count: 1,
            first_ms: t,
            last_ms: t,
        }
    }

    fn push(&mut self, t: EpochMillis) {
        self.count = self.count.saturating_add(1);
        self.last_ms = t;
    }

    fn confirms(&self, rule: Rule) -> bool {
        self.count >= rule.fixes && self.last_ms - self.first_ms >= rule.dwell_ms
    }
}

/// A confirmed change of one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transition {
    /// Left `fence`; `at_ms` is the first fix away from it.
    Exit { fence: FenceIdx, at_ms: EpochMillis },
    /// Entered `fence`; `at_ms` is the first fix of the confirming run.
    Enter { fence: FenceIdx, at_ms: EpochMillis },
}

/// The hysteresis state of one layer.
#[derive(Debug, Clone, Default)]
pub(super) struct Tracker {
    /// The confirmed fence; `None` is outside every fence of the layer (also the start state).
    current: Option<FenceIdx>,
    /// When `current` began (backdated as the transitions are); the first fix at the start.
    since_ms: Option<EpochMillis>,
    /// Fixes away from `current` since the last fix in it.
    away: Option<Run>,
    /// The latest run of fixes in one fence other than `current` (a suffix of `away`).
    candidate: Option<(FenceIdx, Run)>,
}

impl Tracker {
    /// The confirmed fence.
    pub(super) const fn current(&self) -> Option<FenceIdx> {
        self.current
    }

    /// When the confirmed state began; `None` before the first fix.
    pub(super) const fn since_ms(&self) -> Option<EpochMillis> {
        self.since_ms
    }

    /// Feeds one trusted fix (fix times strictly increasing) found in `fence`; confirmed
    /// changes are appended to `out`, an exit before the enter it makes room for.
    pub(super) fn observe(
        &mut self,
        fence: Option<FenceIdx>,
        t: EpochMillis,
        rule: Rule,
        out: &mut Vec<Transition>,
    ) {
        self.since_ms.get_or_insert(t);
        if fence == self.current {
            self.away = None;
            self.candidate = None;
            return;
        }
        let away = match &mut self.away {
            Some(run) => {
                run.push(t);
                *run
            }
            None => *self.away.insert(Run::start(t)),
        };
        self.candidate = match (self.candidate.take(), fence) {
            (Some((f, mut run)), Some(g)) if f == g => {
                run.push(t);
                Some((f, run))
            }
            (_, Some(g)) => Some((g, Run::start(t))),
            (_, None) => None,
        };
        if let Some(current) = self.current
            && away.confirms(rule)
        {
            out.push(Transition::Exit {
                fence: current,
                at_ms: away.first_ms,
            });
            self.current = None;
            self.since_ms = Some(away.first_ms);
            self.away = None;
        }
        // The candidate run is a suffix of the away run, so a confirmed candidate has already
        // confirmed the exit above and `current` is `None` here.
        if let Some((fence, run)) = self.candidate
            && self.current.is_none()
            && run.confirms(rule)
        {
            out.push(Transition::Enter {
                fence,
                at_ms: run.first_ms,
            });
            self.current = Some(fence);
            self.since_ms = Some(run.first_ms);
            self.away = None;
            self.candidate = None;
        }
    }
}

impl Run {
    fn encode(&self, w: &mut Writer) {
        w.u32(self.count);
        w.i64(self.first_ms);
        w.i64(self.last_ms);
    }

    fn decode(r: &mut Reader<'_>) -> Option<Self> {
        Some(Self {
            count: r.u32()?,
            first_ms: r.i64()?,
            last_ms: r.i64()?,
        })
    }
}

impl Tracker {
    /// Writes the tracker, fences by the id `id` gives them.
    pub(super) fn encode(&self, w: &mut Writer, id: impl Fn(FenceIdx) -> Option<String>) {
        w.opt(self.current.and_then(&id), |w, f| w.str(&f));
        w.opt(self.since_ms, Writer::i64);
        w.opt(self.away, |w, run| run.encode(w));
        w.opt(
            self.candidate.and_then(|(f, run)| Some((id(f)?, run))),
            |w, (f, run)| {
                w.str(&f);
                run.encode(w);
            },
        );
    }

    /// Reads a tracker written by [`Tracker::encode`], fences looked up by id with `fence`.
    /// A confirmed fence that no longer exists reads as outside every fence; a candidate
    /// run in such a fence is dropped.
    pub(super) fn decode(
        r: &mut Reader<'_>,
        fence: impl Fn(&str) -> Option<FenceIdx>,
    ) -> Option<Self> {
        let current = r.opt(|r| r.str().map(&fence))?.flatten();
        let since_ms = r.opt(Reader::i64)?;
        let away = r.opt(Run::decode)?;
        let candidate = r
            .opt(|r| {
                let f = r.str()?;
                let run = Run::decode(r)?;
                Some(fence(f).map(|f| (f, run)))
            })?
            .flatten();
        Some(Self {
            current,
            since_ms,
            away,
            candidate,
        })
    }
}
