//! coderun-load: load for a running coderun stack through its public API (the typed client),
//! every answer checked and every accepted run accounted for.
//!
//! - [`args`]: the command line; four shapes of load: `open` (a rate), `closed` (a
//!   concurrency), `step` (the limit-load test: the saturation, then an open loop at a share
//!   of it), `soak` (a long open loop in windows, with the stack watched).
//! - [`mix`]: the languages and verdicts sent and the program behind each.
//! - [`sender`]: one run per call, its answer judged, the books kept.
//! - [`settle`]: what became of every accepted run: lost (never terminal) or duplicated
//!   (started more than once).
//! - [`soak`], [`inspect`], [`windows`], [`checks`]: the soak (one open loop seen window by
//!   window), what it reads of the stack, and its checks (services' memory from `/metrics`, Redis keys,
//!   containers).
//! - [`report`]: the table or JSON at the end.
//!
//! The loops themselves (closed, open, the saturation search, percentiles, progress bars) are
//! the bench's (`coderun_bench::{load, saturation, stats, progress}`), so both tools measure
//! the same way.

pub mod args;
pub mod checks;
pub mod inspect;
pub mod mix;
pub mod report;
pub mod sender;
pub mod settle;
pub mod soak;
pub mod windows;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use coderun_bench::load::{self, Arrivals, Operation, Tally};
use coderun_bench::progress::{Phase, Progress};
use coderun_bench::saturation::{self, Search, Step};
use coderun_client::Client;
use coderun_schema::catalog::Catalog;

use crate::args::{Args, Mode, SearchArgs};
use crate::mix::Mix;
use crate::report::{BooksSummary, Level, Report, Saturation};
use crate::sender::Sender;

/// How long the runs still unfinished when the load ends are waited for before counting lost.
const SETTLE_GRACE: Duration = Duration::from_secs(30);
/// The soak's warm-up before its idle figures are read.
const SOAK_WARM_UP: Duration = Duration::from_secs(20);

/// Runs the load; `Ok(false)` when `--check` found a run lost, duplicated, refused or
/// answered wrongly, or a soak check failed.
pub async fn run(args: Args) -> anyhow::Result<bool> {
    let mix = Mix::parse(&args.mix, &Catalog::builtin())
        .map_err(anyhow::Error::msg)
        .context("--mix")?;
    let client = Client::new(&args.url, &args.api_key).context("--url or --api-key")?;
    let ready = client
        .ready()
        .await
        .with_context(|| format!("the gateway at {} is not ready", args.url))?;
    anyhow::ensure!(
        ready.status == "ok",
        "the gateway at {} is not ready: {:?}",
        args.url,
        ready.checks
    );
    let sender = Sender::new(client.clone(), mix, args.lost_after);
    let operation = sender.operation();
    let progress = Progress::for_stderr();
    let started = Instant::now();
    let (description, tally, saturation, soak) = drive(&args, &operation, &progress).await?;
    let seconds = started.elapsed().as_secs_f64();
    let books = sender.books();
    let phase = progress.phase(
        &format!("reading back {} accepted runs", books.accepted.len()),
        Some(books.accepted.len() as u64),
    );
    let settled = settle::settle(&client, &books.accepted, SETTLE_GRACE, &phase).await;
    phase.finish(&format!(
        "{} lost, {} duplicated",
        settled.lost, settled.duplicated
    ));
    let soak = soak.map(|mut figures| {
        figures.checks = checks::checks(&figures);
        figures
    });
    let report = Report {
        load: description,
        mix: args.mix.clone(),
        seconds,
        throughput: tally.throughput(),
        latency: tally.percentiles(),
        books: BooksSummary::from(&books),
        settled,
        late: tally.lost,
        saturation,
        soak,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    Ok(!args.check || report.clean())
}

type Driven = (String, Tally, Option<Saturation>, Option<soak::SoakFigures>);

async fn drive(args: &Args, operation: &Operation, progress: &Progress) -> anyhow::Result<Driven> {
    Ok(match &args.mode {
        Mode::Open {
            rate,
            duration,
            arrivals,
        } => {
            anyhow::ensure!(rate.is_finite() && *rate > 0.0, "--rate must be above 0");
            let name = format!("open loop at {rate:.1} runs/s ({arrivals:?}) for {duration:?}");
            let tally = open(
                operation,
                *rate,
                (*arrivals).into(),
                *duration,
                &name,
                progress,
            )
            .await;
            (name, tally, None, None)
        }
        Mode::Closed {
            concurrency,
            duration,
        } => {
            anyhow::ensure!(*concurrency > 0, "--concurrency must be at least 1");
            let name = format!("closed loop of {concurrency} clients for {duration:?}");
            let phase = progress.phase(&name, None);
            let tally = load::closed_loop(operation, *concurrency, *duration, &phase).await;
            finish(&phase, &tally);
            (name, tally, None, None)
        }
        Mode::Step { search, duration } => {
            let saturation = saturate(operation, search, progress).await?;
            let rate = saturation.throughput * search.fraction;
            let name = format!(
                "open loop at {:.0} % of the saturation, {rate:.1} runs/s, for {duration:?}",
                search.fraction * 100.0
            );
            let tally = open(
                operation,
                rate,
                Arrivals::Poisson,
                *duration,
                &name,
                progress,
            )
            .await;
            (name, tally, Some(saturation), None)
        }
        Mode::Soak {
            rate,
            search,
            duration,
            window,
            metrics,
            redis_url,
            docker,
            prefix,
        } => {
            let (rate, saturation) = match rate {
                Some(rate) => (*rate, None),
                None => {
                    let saturation = saturate(operation, search, progress).await?;
                    (saturation.throughput * search.fraction, Some(saturation))
                }
            };
            anyhow::ensure!(
                rate.is_finite() && rate > 0.0,
                "the soak's rate must be above 0"
            );
            anyhow::ensure!(!window.is_zero(), "--window must be above 0");
            let windows = (duration.as_secs_f64() / window.as_secs_f64())
                .ceil()
                .max(1.0) as usize;
            let watch = soak::Watch {
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()?,
                metrics: metrics.clone(),
                redis_url: redis_url.clone(),
                docker: if *docker {
                    Some(bollard::Docker::connect_with_defaults().context("--docker")?)
                } else {
                    None
                },
                prefix: prefix.clone(),
            };
            let name = format!("warm-up at {rate:.1} runs/s");
            let _ = open(
                operation,
                rate,
                Arrivals::Poisson,
                SOAK_WARM_UP,
                &name,
                progress,
            )
            .await;
            let (tally, figures) =
                soak::soak(operation, rate, *window, windows, &watch, progress).await;
            let name = format!("soak at {rate:.1} runs/s, {windows} windows of {window:?}");
            (name, tally, saturation, Some(figures))
        }
    })
}

async fn open(
    operation: &Operation,
    rate: f64,
    arrivals: Arrivals,
    duration: Duration,
    name: &str,
    progress: &Progress,
) -> Tally {
    let expected = (rate * duration.as_secs_f64()).round() as u64;
    let phase = progress.phase(name, Some(expected.max(1)));
    let tally = load::open_loop(operation, rate, arrivals, duration, &phase).await;
    finish(&phase, &tally);
    tally
}

fn finish(phase: &Phase, tally: &Tally) {
    phase.finish(&format!(
        "{} as expected, {} not, {} lost, {:.1} runs/s",
        tally.succeeded(),
        tally.failed,
        tally.lost,
        tally.throughput().unwrap_or(0.0)
    ));
}

async fn saturate(
    operation: &Operation,
    search: &SearchArgs,
    progress: &Progress,
) -> anyhow::Result<Saturation> {
    anyhow::ensure!(
        search.fraction > 0.0 && search.fraction <= 1.0,
        "--fraction must be above 0 and at most 1"
    );
    anyhow::ensure!(
        !search.levels.is_empty() && search.levels.iter().all(|level| *level > 0),
        "--levels must be concurrencies of at least 1"
    );
    let found: Search = saturation::search(
        operation,
        "the mix",
        &search.levels,
        search.step_duration,
        progress,
    )
    .await;
    let (concurrency, throughput) = found
        .saturation()
        .context("no level of the search finished a run as expected")?;
    let level = |step: &Step| Level {
        concurrency: step.concurrency,
        throughput: step.tally.throughput(),
        latency: step.tally.percentiles(),
        unsuccessful: step.tally.failed + step.tally.lost,
    };
    Ok(Saturation {
        levels: found.steps.iter().map(level).collect(),
        again: found.confirmation.as_ref().map(level),
        concurrency,
        throughput,
    })
}
