//! `scripts/bench-projects`: a project of many mailboxes against the same mailboxes
//! moved one at a time. MAILBOXES (default 100) mailboxes of MESSAGES (default 1,000)
//! messages each wait in a Dovecot; Ferry (SQLite, in this process, release build)
//! first moves one of them alone (the single-mailbox time; times MAILBOXES is the
//! aggregate), then all of them as one project with CONCURRENCY (default 10) at once.
//! While the project runs, a staff session asks for the project's console page every
//! quarter second: its p50 and p99. Reports the ratio of the project's time to the
//! aggregate and this process's peak RSS (Ferry and this harness together).

use std::time::{Duration, Instant};

use ferry::domain::{Actor, ListedRequest, MigrationRequest, ProjectOptions, ProjectStatus};
use ferry::service::ProjectInput;
use ferry_tests::app::{ADMIN_EMAIL, ADMIN_PASSWORD, Options, TestApp, plain_side};
use ferry_tests::corpus;
use ferry_tests::dovecot::{Dovecot, Layout, Options as DovecotOptions};
use ferry_tests::imap::{SeedMessage, login, seed};

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn user(n: usize) -> String {
    format!("box{n:03}@bench.example")
}

const PASSWORD: &str = "bench-project-pw";

fn rows(src: &Dovecot, dst: &Dovecot, boxes: std::ops::Range<usize>) -> Vec<ListedRequest> {
    boxes
        .enumerate()
        .map(|(i, n)| ListedRequest {
            row: i + 1,
            request: MigrationRequest {
                source: plain_side(src.port, &user(n), PASSWORD),
                destination: plain_side(dst.port, &user(n), PASSWORD),
                ..Default::default()
            },
            problems: Vec::new(),
            also: Vec::new(),
        })
        .collect()
}

/// Makes a project of `rows` and waits for it to finish; its wall time.
async fn run(
    app: &TestApp,
    name: &str,
    rows: Vec<ListedRequest>,
    concurrency: u32,
) -> (Duration, String) {
    let start = Instant::now();
    let made = app
        .services
        .create_project(
            &Actor::Cli,
            ProjectInput {
                name: name.into(),
                requester_email: "it@bench.example".into(),
                options: ProjectOptions {
                    two_pass: false,
                    digest: false,
                    ..Default::default()
                },
                concurrency: Some(concurrency),
                may_override: true,
                ..Default::default()
            },
            rows,
            None,
            true,
        )
        .await
        .expect("the project");
    let code = made.project.code.to_string();
    loop {
        let view = app
            .services
            .project_view(made.project.id)
            .await
            .expect("the project");
        if view.status == ProjectStatus::Finished {
            assert_eq!(
                view.counts.completed, view.counts.mailboxes,
                "every mailbox completed: {:?}",
                view.counts
            );
            return (start.elapsed(), code);
        }
        assert!(
            start.elapsed() < Duration::from_secs(3600),
            "stuck: {:?}",
            view.counts
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() {
    let mailboxes = setting("MAILBOXES", 100);
    let messages = setting("MESSAGES", 1000);
    let concurrency = setting("CONCURRENCY", 10) as u32;
    let src = Dovecot::start_with(DovecotOptions {
        layout: Layout::Slash,
        fsync: false,
        ..Default::default()
    })
    .expect("Dovecot");
    let dst = Dovecot::start_with(DovecotOptions {
        layout: Layout::Slash,
        fsync: false,
        ..Default::default()
    })
    .expect("Dovecot");
    // Every account first (Dovecot rereads its passwd-file only when its second
    // changes), the solo mailbox's (number 0) too.
    for n in 0..=mailboxes {
        src.add_user(&user(n), PASSWORD).expect("a user");
        dst.add_user(&user(n), PASSWORD).expect("a user");
    }
    let started = Instant::now();
    let mut bytes = 0usize;
    for n in 0..=mailboxes {
        let batch: Vec<SeedMessage> = (0..messages)
            .map(|i| SeedMessage {
                body: corpus::message(n * 100_000 + i, true, 2_000 + (i * 37) % 6_000),
                flags: Vec::new(),
                internal_date: None,
            })
            .collect();
        bytes += batch.iter().map(|m| m.body.len()).sum::<usize>();
        let mut session = login(&src, &user(n), PASSWORD).await.expect("a login");
        seed(&mut session, "INBOX", &batch).await.expect("APPEND");
        let _ = session.logout().await;
    }
    println!(
        "seeded {} mailboxes of {messages} messages ({:.0} MB) in {:.0} s",
        mailboxes + 1,
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    let app = TestApp::spawn_with(Options {
        tweak: Some(|s| {
            s.capacity.max_concurrent = 64;
            s.capacity.per_source_host = 64;
            s.capacity.max_active = 100_000;
            s.workers.poll_seconds = 1;
            s.log.filter = "warn".into();
        }),
        ..Default::default()
    })
    .await;

    // One mailbox alone.
    let (solo, _) = run(&app, "solo", rows(&src, &dst, 0..1), 1).await;
    println!("one mailbox alone: {:.2} s", solo.as_secs_f64());

    // The project, with the console's project page asked for meanwhile.
    let client = TestApp::new_client();
    let resp = app.sign_in(&client, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert!(resp.status().is_redirection(), "signed in");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (stop, client, base, services) = (
            stop.clone(),
            client.clone(),
            app.base.clone(),
            app.services.clone(),
        );
        tokio::spawn(async move {
            let mut times = Vec::new();
            // The project appears once made: its code from the list.
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let code = services
                    .store()
                    .list_projects(&ferry::store::ProjectFilter {
                        search: Some("project".into()),
                        page: 0,
                        per_page: 1,
                    })
                    .await
                    .ok()
                    .and_then(|(p, _)| p.first().map(|p| p.code.to_string()));
                if let Some(code) = code {
                    let t = Instant::now();
                    let resp = client
                        .get(format!("{base}/projects/{code}"))
                        .send()
                        .await
                        .expect("the page");
                    assert_eq!(resp.status(), 200);
                    let _ = resp.bytes().await;
                    times.push(t.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            times
        })
    };
    let (whole, code) = run(
        &app,
        "project",
        rows(&src, &dst, 1..mailboxes + 1),
        concurrency,
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut times = watcher.await.expect("the watcher");
    times.sort();
    let pct = |p: f64| {
        times
            .get(((times.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    };
    let aggregate = solo.as_secs_f64() * mailboxes as f64;
    println!(
        "project {code}: {mailboxes} mailboxes, {} messages, concurrency {concurrency}: {:.1} s ({:.0} messages/s)",
        mailboxes * messages,
        whole.as_secs_f64(),
        (mailboxes * messages) as f64 / whole.as_secs_f64()
    );
    println!(
        "{mailboxes} x one mailbox alone: {aggregate:.1} s; project / aggregate: {:.2} (aim: at most 1.5)",
        whole.as_secs_f64() / aggregate
    );
    println!(
        "console project page while it ran: {} requests, p50 {:.1} ms, p99 {:.1} ms (aim: p99 under 100 ms)",
        times.len(),
        pct(0.5),
        pct(0.99)
    );
    println!(
        "peak RSS of this process (Ferry and the harness): {:.0} MiB (aim: under 512 MiB)",
        ferry_tests::peak_rss() as f64 / (1024.0 * 1024.0)
    );
    app.stop().await;
}
