//! What a sign-in attempt may do, given the failures counted so far (in the database,
//! shared by every process): the pure rule, unit-tested, and `sign_in_gate`, which
//! applies it to staff sign-in and to the customers' (a project, a single migration).
//!
//! - An address that failed `max_failures` times in the window is refused until the
//!   window passes: an attacker locks out only themselves.
//! - An account that failed `max_failures` times (from anywhere) is never refused: each
//!   further attempt waits 1 s, 2 s, 4 s, … up to [`MAX_DELAY`] before its answer, which
//!   slows a distributed guesser without locking the owner out.
//!
//! Before this, 5 wrong passwords locked a known account for everyone for 15 minutes,
//! and behind a proxy every user shared one address.

use std::time::Duration;

use super::Services;

/// The longest an attempt on a much-guessed account waits.
pub const MAX_DELAY: Duration = Duration::from_secs(30);

/// The rule's settings.
#[derive(Debug, Clone, Copy)]
pub struct LoginPolicy {
    pub max_failures: u32,
    pub window: Duration,
}

/// What an attempt may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Refused without checking the password; try again after this long.
    Refuse(Duration),
    /// Checked after waiting this long (zero for most attempts).
    Proceed(Duration),
}

impl LoginPolicy {
    pub fn verdict(&self, address_failures: u32, account_failures: u32) -> Verdict {
        let max = self.max_failures.max(1);
        if address_failures >= max {
            return Verdict::Refuse(self.window);
        }
        if account_failures < max {
            return Verdict::Proceed(Duration::ZERO);
        }
        let doublings = (account_failures - max).min(16);
        Verdict::Proceed(Duration::from_secs(1u64 << doublings).min(MAX_DELAY))
    }
}

impl Services {
    /// The keys a sign-in's failures count against (the account, the address), once
    /// the rule lets the attempt be checked (after the much-guessed account's delay);
    /// `Err(wait)` when the address is refused for that long. Staff sign-in, a
    /// project's and a single migration's tracking share it.
    pub(super) async fn sign_in_gate(
        &self,
        account_key: &str,
        ip: Option<&str>,
    ) -> anyhow::Result<Result<Vec<String>, Duration>> {
        let address_key = ip.map(|ip| format!("ip:{ip}"));
        let keys: Vec<String> = std::iter::once(account_key.to_owned())
            .chain(address_key.clone())
            .collect();
        let console = &self.settings().console;
        let policy = LoginPolicy {
            max_failures: console.login_max_failures,
            window: Duration::from_secs(console.login_window_seconds),
        };
        let window_start = self.now()
            - chrono::Duration::from_std(policy.window).unwrap_or(chrono::Duration::zero());
        let counts = self.store().login_failures(&keys, window_start).await?;
        let count = |key: &str| counts.iter().find(|(k, _)| k == key).map_or(0, |(_, n)| *n);
        match policy.verdict(address_key.as_deref().map_or(0, count), count(account_key)) {
            Verdict::Refuse(wait) => return Ok(Err(wait)),
            Verdict::Proceed(delay) if !delay.is_zero() => tokio::time::sleep(delay).await,
            Verdict::Proceed(_) => {}
        }
        Ok(Ok(keys))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_refused_and_an_account_only_slowed() {
        let p = LoginPolicy {
            max_failures: 3,
            window: Duration::from_secs(900),
        };
        assert_eq!(p.verdict(0, 0), Verdict::Proceed(Duration::ZERO));
        assert_eq!(p.verdict(2, 2), Verdict::Proceed(Duration::ZERO));
        assert_eq!(p.verdict(3, 0), Verdict::Refuse(Duration::from_secs(900)));
        assert_eq!(p.verdict(0, 3), Verdict::Proceed(Duration::from_secs(1)));
        assert_eq!(p.verdict(0, 4), Verdict::Proceed(Duration::from_secs(2)));
        assert_eq!(p.verdict(0, 6), Verdict::Proceed(Duration::from_secs(8)));
        assert_eq!(p.verdict(0, 60), Verdict::Proceed(MAX_DELAY));
        assert_eq!(p.verdict(0, u32::MAX), Verdict::Proceed(MAX_DELAY));
    }
}
