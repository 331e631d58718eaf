//! A fresh database on the machine's PostgreSQL (127.0.0.1:5432, trust auth), dropped
//! when the test ends.

use std::process::Command;

use anyhow::Context;

const ADMIN_URL_ENV: &str = "FERRY_TEST_PG";
const DEFAULT_HOST: &str = "127.0.0.1";

pub struct PgDatabase {
    pub name: String,
    host: String,
}

fn psql(host: &str, sql: &str) -> anyhow::Result<()> {
    let out = Command::new("psql")
        .args([
            "-h",
            host,
            "-p",
            "5432",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-c",
            sql,
        ])
        .output()
        .context("psql is not installed (scripts/install-test-servers installs it)")?;
    anyhow::ensure!(
        out.status.success(),
        "psql {sql:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

impl PgDatabase {
    pub fn create() -> anyhow::Result<Self> {
        let host = std::env::var(ADMIN_URL_ENV).unwrap_or_else(|_| DEFAULT_HOST.to_owned());
        let name = format!("ferry_test_{}", uuid::Uuid::new_v4().simple());
        psql(&host, &format!("CREATE DATABASE {name}"))?;
        Ok(Self { name, host })
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@{}:5432/{}", self.host, self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = psql(
            &self.host,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}
