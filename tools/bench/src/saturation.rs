//! The throughput search: a closed loop at rising concurrency until throughput stops growing
//! by 5 % over the best so far, a run fails, or the levels run out; then the saturating level
//! once more. A shared machine has fast and slow minutes: a level that caught a fast one would
//! make 70 % of it more than the machine has a minute later, so the saturation is the lower
//! of the two readings.

use std::time::Duration;

use crate::load::{self, Operation, Tally};
use crate::progress::Progress;

/// Growth over the best so far below which the stack counts as saturated.
pub const GROWTH_TO_GO_ON: f64 = 1.05;

/// One level of the search.
#[derive(Debug, Clone)]
pub struct Step {
    pub concurrency: usize,
    pub tally: Tally,
}

/// The levels tried and the best of them.
#[derive(Debug, Clone, Default)]
pub struct Search {
    pub steps: Vec<Step>,
    /// The saturating level measured again after the search.
    pub confirmation: Option<Step>,
}

impl Search {
    /// The saturating level: the lowest concurrency within 5 % of the highest throughput
    /// (more clients that add nothing only add queueing): (concurrency, runs per second).
    pub fn best(&self) -> Option<(usize, f64)> {
        let levels: Vec<(usize, f64)> = self
            .steps
            .iter()
            .filter_map(|step| Some((step.concurrency, step.tally.throughput()?)))
            .collect();
        let highest = levels.iter().map(|level| level.1).reduce(f64::max)?;
        levels
            .into_iter()
            .filter(|level| level.1 * GROWTH_TO_GO_ON >= highest)
            .min_by_key(|level| level.0)
    }

    /// The saturation: the saturating level and the lower of its two readings, the search's
    /// and the confirmation's (the search's alone when there is no confirmation).
    pub fn saturation(&self) -> Option<(usize, f64)> {
        let (level, searched) = self.best()?;
        let confirmed = self
            .confirmation
            .as_ref()
            .and_then(|step| step.tally.throughput());
        Some((
            level,
            confirmed.map_or(searched, |again| again.min(searched)),
        ))
    }

    /// The highest throughput of any level.
    fn highest(&self) -> Option<f64> {
        self.steps
            .iter()
            .filter_map(|step| step.tally.throughput())
            .reduce(f64::max)
    }
}

/// Whether the search ends after a level that gave `throughput` (with `unsuccessful` runs)
/// when the best before it was `best`.
pub fn saturated(best: Option<f64>, throughput: f64, unsuccessful: usize) -> bool {
    unsuccessful > 0 || best.is_some_and(|best| throughput < best * GROWTH_TO_GO_ON)
}

/// Tries each of `levels` for `duration` until the stack saturates; `what` names the
/// operation in the progress lines.
pub async fn search(
    operation: &Operation,
    what: &str,
    levels: &[usize],
    duration: Duration,
    progress: &Progress,
) -> Search {
    let mut search = Search::default();
    for &concurrency in levels {
        let best = search.highest();
        let phase = progress.phase(&format!("throughput: {what} at c={concurrency}"), None);
        let tally = load::closed_loop(operation, concurrency, duration, &phase).await;
        let throughput = tally.throughput().unwrap_or(0.0);
        let unsuccessful = tally.failed + tally.lost;
        phase.finish(&format!(
            "{throughput:.1} runs/s, {unsuccessful} failed or lost"
        ));
        search.steps.push(Step { concurrency, tally });
        if saturated(best, throughput, unsuccessful) {
            break;
        }
    }
    if let Some((concurrency, _)) = search.best() {
        let phase = progress.phase(
            &format!("throughput: {what} at c={concurrency} again"),
            None,
        );
        let tally = load::closed_loop(operation, concurrency, duration, &phase).await;
        phase.finish(&format!(
            "{:.1} runs/s, {} failed or lost",
            tally.throughput().unwrap_or(0.0),
            tally.failed + tally.lost
        ));
        search.confirmation = Some(Step { concurrency, tally });
    }
    search
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_goes_on_while_throughput_grows_five_percent() {
        assert!(!saturated(None, 10.0, 0));
        assert!(!saturated(Some(10.0), 10.6, 0));
        assert!(saturated(Some(10.0), 10.4, 0));
        assert!(saturated(Some(10.0), 9.0, 0));
        assert!(saturated(None, 10.0, 1));
    }

    #[test]
    fn the_best_level_is_the_fastest_not_the_last() {
        let tally = |runs: usize| {
            let mut tally = Tally::default();
            for _ in 0..runs {
                tally.record(
                    Duration::from_millis(1),
                    load::Outcome::Succeeded {
                        program_cpu_ms: 0,
                        queue_ms: None,
                    },
                );
            }
            tally.elapsed = Duration::from_secs(1);
            tally
        };
        let search = Search {
            steps: vec![
                Step {
                    concurrency: 1,
                    tally: tally(5),
                },
                Step {
                    concurrency: 2,
                    tally: tally(9),
                },
                Step {
                    concurrency: 4,
                    tally: tally(8),
                },
            ],
            confirmation: None,
        };
        assert_eq!(search.best(), Some((2, 9.0)));
        assert_eq!(search.saturation(), Some((2, 9.0)));
        // Read again slower, the saturation is the slower reading; faster, the search's.
        let mut again = search.clone();
        again.confirmation = Some(Step {
            concurrency: 2,
            tally: tally(7),
        });
        assert_eq!(again.saturation(), Some((2, 7.0)));
        again.confirmation = Some(Step {
            concurrency: 2,
            tally: tally(12),
        });
        assert_eq!(again.saturation(), Some((2, 9.0)));
        // A level barely faster than a lower one is not worth its queueing.
        let mut flat = search.clone();
        flat.steps[2].tally = tally(9);
        flat.steps[2].tally.elapsed = Duration::from_secs_f64(9.0 / 9.3);
        assert_eq!(flat.best().map(|(level, _)| level), Some(2));
    }
}
