//! `scripts/kill-loop`: `ferry migrate` killed twice at random moments and resumed,
//! trial after trial, each judged byte for byte (see `ferry_tests::killloop`).
//!
//! KILL_TRIALS (default 50) trials; KILL_SEED (default: the clock) picks the moments,
//! and is printed so that a failing series can be run again; KILL_MAX_MS (default
//! 1000) is the latest moment of a kill after a run starts.

use ferry_tests::killloop::{KillLoop, kill_delays};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ferry_tests::init_crypto();
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(1);
    let (trials, seed, max_ms) = (
        env("KILL_TRIALS", 50),
        env("KILL_SEED", clock),
        env("KILL_MAX_MS", 1000),
    );
    println!(
        "kill loop: {trials} trials, KILL_SEED={seed}, kills within {max_ms} ms of each start"
    );
    let series = KillLoop::start().await?;
    let (mut passed, mut failed) = (0, 0);
    for n in 0..trials {
        let delays = kill_delays(seed, n, max_ms);
        let verdict = series.trial(n, delays).await?;
        if verdict.problems.is_empty() {
            passed += 1;
            println!(
                "trial {n}: kills at {:?} and {:?}: exact",
                delays[0], delays[1]
            );
        } else {
            failed += 1;
            println!(
                "trial {n}: kills at {:?} and {:?}: {}",
                delays[0],
                delays[1],
                verdict.problems.join("; ")
            );
        }
    }
    println!("kill loop: {passed} passed, {failed} failed (KILL_SEED={seed})");
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}
