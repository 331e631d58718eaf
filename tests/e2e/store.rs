//! The store against both databases it supports, each test in a database of its own.

use chrono::{Duration, Utc};
use ferry::domain::{
    Actor, DeliveryStatus, EmailAddress, NewAuditEvent, NewEmail, Role, Scope, Scopes,
};
use ferry::domain::{
    CopyRecord, Endpoint, MigrationKind, MigrationStatus, PassKind, Security, ServerAccount, Work,
};
use ferry::store::{AuditFilter, ClaimLimits, NewMigration, NewUser, Store, StoreError};
use ferry_tests::postgres::PgDatabase;

/// A store and what keeps its database alive.
struct Db {
    store: Store,
    _dir: Option<tempfile::TempDir>,
    _pg: Option<PgDatabase>,
}

async fn sqlite() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("ferry.db").display()
    );
    Db {
        store: Store::connect(&url).await.unwrap(),
        _dir: Some(dir),
        _pg: None,
    }
}

async fn postgres() -> Db {
    let pg = PgDatabase::create().unwrap();
    Db {
        store: Store::connect(&pg.url()).await.unwrap(),
        _dir: None,
        _pg: Some(pg),
    }
}

macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let db = super::sqlite().await;
                assert_eq!(db.store.backend_name(), "sqlite");
                super::$name(&db.store).await;
            }
            #[tokio::test]
            async fn postgres() {
                let db = super::postgres().await;
                assert_eq!(db.store.backend_name(), "postgres");
                super::$name(&db.store).await;
            }
        }
    )*};
}

on_both_databases!(
    accounts_are_unique_by_email_and_a_rolled_back_transaction_leaves_nothing,
    sessions_expire_and_end_when_the_account_is_disabled,
    the_outbox_hands_each_attempt_to_one_claimant,
    the_audit_log_pages_newest_first_and_filters,
    tokens_keep_their_scopes,
    due_migrations_are_leased_to_one_worker_each_within_capacity,
    checkpoints_are_written_only_by_the_lease_holder,
    the_database_keeps_one_active_migration_per_mailbox_for_exactly_the_active_statuses,
    an_upload_keeps_its_bytes_until_used_once_or_purged,
    a_full_project_or_source_server_never_hides_the_work_behind_it,
    a_paused_migration_is_never_claimed,
);

/// One claim round as the claimer does it: the limits at `now`, then claims until
/// nothing more is handed out.
async fn claim_round(store: &Store, owner: &str, now: chrono::DateTime<Utc>) -> Vec<i64> {
    let mut got = Vec::new();
    loop {
        let limits = store.claim_limits(now, 10, 3).await.unwrap();
        match store
            .claim_due_migration(owner, now, now + Duration::seconds(60), &limits)
            .await
            .unwrap()
        {
            Some(m) => got.push(m.id.0),
            None => return got,
        }
    }
}

async fn a_project(store: &Store, concurrency: u32) -> ferry::domain::Project {
    let tx = store.begin().await.unwrap();
    let project = tx
        .insert_project(
            ferry::store::NewProject {
                code: ferry::domain::ProjectCode::from_random(rand_bytes()),
                name: "Acme".into(),
                requester_email: "it@acme.example".into(),
                time_zone: "UTC".into(),
                options: Default::default(),
                window_start: None,
                concurrency,
                password_hash: "$argon2id$not-a-real-hash".into(),
                created_by: "test".into(),
                ticket: None,
                approved: true,
            },
            Utc::now(),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    project
}

fn rand_bytes() -> [u8; 8] {
    let mut b = [0u8; 8];
    b.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..8]);
    b
}

/// 200 due mailboxes of one project (concurrency 4), then one single migration asked
/// a minute later, from another server: the first claim round hands out the project's
/// 4 and the single one; the project's others wait, and so do a server's passes beyond
/// its limit (3 here), whatever the project.
async fn a_full_project_or_source_server_never_hides_the_work_behind_it(store: &Store) {
    let now = Utc::now();
    let project = a_project(store, 4).await;
    let tx = store.begin().await.unwrap();
    for n in 0..200 {
        let mut m = new_migration(n, Work::Pass(PassKind::PreMx), now);
        m.project = Some(project.id);
        set_source_host(&mut m, format!("imap{}.old.example", n % 2));
        m.next_run_at = Some(now - Duration::minutes(10));
        tx.insert_migration(m, now).await.unwrap();
    }
    let mut single = new_migration(1000, Work::Pass(PassKind::PreMx), now);
    set_source_host(&mut single, "imap.other.example");
    single.next_run_at = Some(now - Duration::minutes(1));
    let single = tx.insert_migration(single, now).await.unwrap();
    tx.commit().await.unwrap();

    let first = claim_round(store, "w:1", now).await;
    assert!(
        first.contains(&single.id.0),
        "the single migration starts in the first round: {first:?}"
    );
    assert_eq!(
        first.len(),
        5,
        "the project's 4 and the single one: {first:?}"
    );
    let limits = store.claim_limits(now, 10, 3).await.unwrap();
    assert_eq!(limits.full_projects, vec![project.id.0]);
    assert!(limits.pass_allowed, "5 of 10 running");
    // A second round hands out nothing: the project is full.
    assert_eq!(claim_round(store, "w:2", now).await, Vec::<i64>::new());

    // Per source server: a project with room is still held by its server's limit.
    let roomy = a_project(store, 50).await;
    let tx = store.begin().await.unwrap();
    for n in 2000..2010 {
        let mut m = new_migration(n, Work::Pass(PassKind::PreMx), now);
        m.project = Some(roomy.id);
        set_source_host(&mut m, "imap.slow.example");
        m.next_run_at = Some(now - Duration::minutes(5));
        tx.insert_migration(m, now).await.unwrap();
    }
    tx.commit().await.unwrap();
    let third = claim_round(store, "w:3", now).await;
    assert_eq!(
        third.len(),
        3,
        "3 passes from imap.slow.example at once: {third:?}"
    );
    let limits = store.claim_limits(now, 10, 3).await.unwrap();
    assert!(
        limits.full_hosts.contains(&"imap.slow.example".to_owned()),
        "{limits:?}"
    );
}

async fn a_paused_migration_is_never_claimed(store: &Store) {
    let now = Utc::now();
    let tx = store.begin().await.unwrap();
    let mut m = new_migration(1, Work::Pass(PassKind::PreMx), now);
    m.paused = true;
    let paused = tx.insert_migration(m, now).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(paused.status, MigrationStatus::Paused);
    assert_eq!(paused.paused_status, Some(MigrationStatus::Scheduled));
    assert!(claim_round(store, "w", now).await.is_empty());
    // Resumed (its status given back), it is claimed.
    let tx = store.begin().await.unwrap();
    let resumed = tx
        .change_migration_status(
            paused.id,
            MigrationStatus::Paused,
            MigrationStatus::Scheduled,
            ferry::store::StatusChange {
                paused_status: Some(None),
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(resumed);
    assert_eq!(claim_round(store, "w", now).await, vec![paused.id.0]);
}

async fn an_upload_keeps_its_bytes_until_used_once_or_purged(store: &Store) {
    let now = Utc::now();
    // Every byte value, as a sealed file is binary.
    let sealed: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let new = |name: &str| ferry::store::NewUpload {
        created_by: "cli".into(),
        file_name: name.into(),
        size: 70_000,
        sha256: "ab".repeat(32),
        sealed: sealed.clone(),
        requester_email: Some("it@customer.example".into()),
        time_zone: None,
    };
    let tx = store.begin().await.unwrap();
    let first = tx.insert_upload(new("a.csv"), now).await.unwrap();
    let old = tx
        .insert_upload(new("b.xlsx"), now - Duration::days(40))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let (read, bytes) = store.get_upload(first.id).await.unwrap().unwrap();
    assert_eq!(read, first);
    assert_eq!(
        bytes.as_deref(),
        Some(sealed.as_slice()),
        "bytes back exactly"
    );
    assert!(store.use_upload(first.id, now).await.unwrap());
    assert!(!store.use_upload(first.id, now).await.unwrap(), "used once");
    let (read, bytes) = store.get_upload(first.id).await.unwrap().unwrap();
    assert!(bytes.is_none() && read.used_at.is_some() && read.purged_at.is_some());
    assert_eq!(read.file_name, "a.csv", "the metadata stays");
    // The purge takes only what is older than the retention and still has bytes.
    assert_eq!(
        store
            .purge_uploads(now - Duration::days(30), now)
            .await
            .unwrap(),
        1
    );
    let (read, bytes) = store.get_upload(old.id).await.unwrap().unwrap();
    assert!(bytes.is_none() && read.used_at.is_none() && read.purged_at.is_some());
    assert_eq!(
        store
            .purge_uploads(now - Duration::days(30), now)
            .await
            .unwrap(),
        0
    );
}

fn email(s: &str) -> EmailAddress {
    EmailAddress::parse("email", s).unwrap()
}

async fn add_user(store: &Store, address: &str) -> ferry::domain::User {
    let tx = store.begin().await.unwrap();
    let user = tx
        .insert_user(NewUser {
            email: &email(address),
            name: "Test",
            role: Role::Staff,
            password_hash: "x".into(),
            now: Utc::now(),
        })
        .await
        .unwrap();
    tx.commit().await.unwrap();
    user
}

async fn accounts_are_unique_by_email_and_a_rolled_back_transaction_leaves_nothing(store: &Store) {
    let user = add_user(store, "ana@provider.test").await;
    assert_eq!(
        store
            .find_user(user.id)
            .await
            .unwrap()
            .unwrap()
            .email
            .as_str(),
        "ana@provider.test"
    );

    let tx = store.begin().await.unwrap();
    let dup = tx
        .insert_user(NewUser {
            email: &email("ana@provider.test"),
            name: "Again",
            role: Role::Admin,
            password_hash: "y".into(),
            now: Utc::now(),
        })
        .await;
    assert!(matches!(dup, Err(StoreError::Duplicate(_))), "{dup:?}");
    drop(tx);

    let tx = store.begin().await.unwrap();
    tx.insert_user(NewUser {
        email: &email("bo@provider.test"),
        name: "Bo",
        role: Role::Staff,
        password_hash: "z".into(),
        now: Utc::now(),
    })
    .await
    .unwrap();
    tx.audit(NewAuditEvent::new(&Actor::Cli, "user.created"), Utc::now())
        .await
        .unwrap();
    drop(tx); // no commit
    assert_eq!(store.count_users().await.unwrap(), 1);
    assert!(
        store
            .list_audit(&AuditFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap()
            .is_empty()
    );
}

async fn sessions_expire_and_end_when_the_account_is_disabled(store: &Store) {
    let user = add_user(store, "sam@provider.test").await;
    let now = Utc::now();
    let tx = store.begin().await.unwrap();
    tx.insert_session("live", user.id, "csrf-1", now, now + Duration::hours(1))
        .await
        .unwrap();
    tx.insert_session(
        "old",
        user.id,
        "csrf-2",
        now - Duration::hours(2),
        now - Duration::hours(1),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let session = store.find_session("live", now).await.unwrap().unwrap();
    assert_eq!(
        (session.user.id, session.csrf_token.as_str()),
        (user.id, "csrf-1")
    );
    assert!(
        store.find_session("old", now).await.unwrap().is_none(),
        "expired"
    );
    assert_eq!(store.delete_expired_sessions(now).await.unwrap(), 1);
    assert!(
        store
            .find_user(user.id)
            .await
            .unwrap()
            .unwrap()
            .last_login_at
            .is_some()
    );

    let tx = store.begin().await.unwrap();
    tx.set_user_disabled(user.id, true).await.unwrap();
    tx.commit().await.unwrap();
    assert!(store.find_session("live", now).await.unwrap().is_none());
}

async fn the_outbox_hands_each_attempt_to_one_claimant(store: &Store) {
    let now = Utc::now();
    let tx = store.begin().await.unwrap();
    for n in 0..3 {
        tx.enqueue_email(
            NewEmail {
                template: "test",
                to: vec![email(&format!("to{n}@example.com"))],
                subject: format!("Subject {n}"),
                body_text: "text".into(),
                body_html: "<p>html</p>".into(),
                about: None,
                thread: Default::default(),
                message_id: None,
                attachment: None,
            },
            now,
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let lease = now + Duration::minutes(5);
    let (a, b) = tokio::join!(
        store.claim_due_outbox(now, lease, 10),
        store.claim_due_outbox(now, lease, 10)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut ids: Vec<ferry::domain::OutboxId> = a.iter().chain(&b).map(|m| m.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(a.len() + b.len(), 3, "each message claimed exactly once");
    assert_eq!(ids.len(), 3);
    assert!(
        store
            .claim_due_outbox(now, lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );

    let first = a.first().or(b.first()).unwrap().clone();
    assert_eq!(first.attempts, 1);
    store.mark_outbox_sent(first.id, now).await.unwrap();
    let failed = a.iter().chain(&b).find(|m| m.id != first.id).unwrap();
    store
        .mark_outbox_attempt_failed(failed.id, "550 no such user", None)
        .await
        .unwrap();
    assert_eq!(store.count_outbox(DeliveryStatus::Sent).await.unwrap(), 1);
    assert_eq!(store.count_outbox(DeliveryStatus::Failed).await.unwrap(), 1);
    assert_eq!(
        store
            .get_outbox(failed.id)
            .await
            .unwrap()
            .unwrap()
            .last_error
            .as_deref(),
        Some("550 no such user")
    );
    // A lease that runs out makes the message due again (a crash mid-send).
    assert_eq!(
        store
            .claim_due_outbox(
                lease + Duration::seconds(1),
                lease + Duration::minutes(10),
                10
            )
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn the_audit_log_pages_newest_first_and_filters(store: &Store) {
    let tx = store.begin().await.unwrap();
    for action in ["user.created", "token.created", "user.disabled"] {
        tx.audit(
            NewAuditEvent::new(&Actor::System, action)
                .subject("user", 7)
                .ip(Some("127.0.0.1".into())),
            Utc::now(),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let all = store
        .list_audit(&AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<_> = all.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["user.disabled", "token.created", "user.created"]);
    let users = store
        .list_audit(&AuditFilter {
            limit: 10,
            action_prefix: Some("user.".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(users.len(), 2);
    let page2 = store
        .list_audit(&AuditFilter {
            limit: 10,
            before_id: Some(all[0].id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page2.len(), 2);
    assert_eq!(all[0].actor, "system");
    assert_eq!(all[0].subject_id.as_deref(), Some("7"));
}

async fn tokens_keep_their_scopes(store: &Store) {
    let tx = store.begin().await.unwrap();
    let scopes = Scopes::new([Scope::MigrationsWrite, Scope::MigrationsRead]);
    let token = tx
        .insert_token("ci", "digest-1", "fy_abc", &scopes, Utc::now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let found = store.find_token("digest-1").await.unwrap().unwrap();
    assert_eq!(found, token);
    assert!(
        found.scopes.contains(Scope::MigrationsWrite) && !found.scopes.contains(Scope::AuditRead)
    );
    assert!(store.find_token("digest-2").await.unwrap().is_none());
}

/// A customer token digest no other test migration has.
fn unique_digest() -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("digest-{}-{n}", std::process::id())
}

/// Claim limits with or without room for passes, and no project or server full.
fn limits(pass_allowed: bool) -> ClaimLimits {
    ClaimLimits {
        pass_allowed,
        ..Default::default()
    }
}

/// Points a test migration's IMAP source at `host`.
fn set_source_host(m: &mut NewMigration, host: impl Into<String>) {
    if let Endpoint::Imap(a) = &mut m.source {
        a.host = host.into();
    }
}

fn new_migration(n: usize, work: Work, now: chrono::DateTime<Utc>) -> NewMigration {
    let account = |user: String| {
        Endpoint::Imap(ServerAccount {
            host: "imap.example".into(),
            port: 993,
            security: Security::Ssl,
            username: user,
            authuser: None,
        })
    };
    NewMigration {
        status: MigrationStatus::Scheduled,
        created_by: "test".into(),
        requester_email: format!("u{n}@example.com"),
        kind: MigrationKind::Mail,
        source: account(format!("u{n}@old.example")),
        source_secret: "sealed".into(),
        dest: account(format!("u{n}@new.example")),
        dest_secret: "sealed".into(),
        options: Default::default(),
        two_pass: true,
        mx_domain: "new.example".into(),
        window_start: None,
        time_zone: "UTC".into(),
        next_work: Some(work),
        resume_work: None,
        next_run_at: Some(now - Duration::seconds(1)),
        customer_token: ("sealed".into(), unique_digest()),
        customer_ref: None,
        ticket: None,
        project: None,
        paused: false,
    }
}

async fn due_migrations_are_leased_to_one_worker_each_within_capacity(store: &Store) {
    let now = Utc::now();
    let tx = store.begin().await.unwrap();
    for n in 0..40 {
        tx.insert_migration(new_migration(n, Work::Pass(PassKind::PreMx), now), now)
            .await
            .unwrap();
    }
    let validate = tx
        .insert_migration(new_migration(99, Work::Validate, now), now)
        .await
        .unwrap();
    let mut later = new_migration(100, Work::Pass(PassKind::PreMx), now);
    later.next_run_at = Some(now + Duration::hours(1));
    tx.insert_migration(later, now).await.unwrap();
    tx.commit().await.unwrap();

    // Four workers claim at once until nothing is due: each migration exactly once.
    let lease = now + Duration::seconds(60);
    let claimer = |owner: &'static str| async move {
        let mut got = Vec::new();
        while let Some(m) = store
            .claim_due_migration(owner, now, lease, &limits(true))
            .await
            .unwrap()
        {
            assert_eq!(m.lease_owner.as_deref(), Some(owner));
            got.push(m.id);
        }
        got
    };
    let (a, b, c, d) = tokio::join!(claimer("a"), claimer("b"), claimer("c"), claimer("d"));
    let mut all: Vec<ferry::domain::MigrationId> = [a, b, c, d].concat();
    all.sort();
    let claimed = all.len();
    all.dedup();
    assert_eq!(
        (claimed, all.len()),
        (41, 41),
        "each due migration leased once"
    );
    assert_eq!(store.count_running_passes(now).await.unwrap(), 40);

    // A lease that runs out (a dead process) makes the work due again; at capacity
    // only work that copies nothing is handed out.
    let after = lease + Duration::seconds(1);
    let m = store
        .claim_due_migration("e", after, after + Duration::seconds(60), &limits(false))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.id, validate.id, "only validation at capacity");
    assert!(
        store
            .claim_due_migration("e", after, after + Duration::seconds(60), &limits(false))
            .await
            .unwrap()
            .is_none()
    );
    // Renewal belongs to the lease's owner.
    assert!(
        store
            .renew_lease(m.id, "e", after + Duration::seconds(90))
            .await
            .unwrap()
    );
    assert!(
        !store
            .renew_lease(m.id, "a", after + Duration::seconds(90))
            .await
            .unwrap()
    );
    store.release_lease(m.id, "e").await.unwrap();
    assert!(
        store
            .claim_due_migration("f", after, after + Duration::seconds(60), &limits(false))
            .await
            .unwrap()
            .is_some(),
        "released, due again"
    );
}

async fn checkpoints_are_written_only_by_the_lease_holder(store: &Store) {
    let now = Utc::now();
    let tx = store.begin().await.unwrap();
    let m = tx
        .insert_migration(new_migration(1, Work::Pass(PassKind::PreMx), now), now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let checkpoints = |store: &Store| {
        let store = store.clone();
        async move {
            let mut all = store.folder_checkpoints(m.id).await.unwrap();
            all.sort();
            all
        }
    };

    // Nobody holds it: nothing is written.
    assert!(
        !store
            .save_folder_checkpoint(m.id, "INBOX", "{}", (false, &[]), "host:0", now)
            .await
            .unwrap()
    );
    assert!(checkpoints(store).await.is_empty());

    // The holder writes, and writes again.
    let lease = now + Duration::seconds(3);
    let first = store
        .claim_due_migration("host:0", now, lease, &limits(true))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.id, m.id);
    let record = |n: u32| CopyRecord {
        key: format!("<m{n}@x>"),
        dest_uid: Some(n + 100),
        skipped: false,
        source_deleted: false,
        pass: 1,
        removed: false,
        // A DAV item's version is kept (and read back) with it.
        version: (n == 2).then(|| format!("\"etag-{n}\"")),
    };
    for n in 1..=2 {
        let saved = store
            .save_folder_checkpoint(
                m.id,
                "INBOX",
                &format!("{{\"n\":{n}}}"),
                (false, &[(n, record(n))]),
                "host:0",
                now,
            )
            .await
            .unwrap();
        assert!(saved);
    }
    let ledger = store.ledger(m.id).await.unwrap();
    assert_eq!(
        ledger["INBOX"].keys().copied().collect::<Vec<_>>(),
        [1, 2],
        "entries are added batch by batch, never rewritten"
    );
    assert_eq!(ledger["INBOX"][&2], record(2));
    assert_eq!(
        checkpoints(store).await,
        vec![("INBOX".to_owned(), r#"{"n":2}"#.to_owned())]
    );

    // Its lease runs out: the same process claims the migration again under a new
    // token, and the first claim can neither renew nor write.
    let after = lease + Duration::seconds(1);
    assert!(
        !store
            .save_folder_checkpoint(
                m.id,
                "INBOX",
                r#"{"n":3}"#,
                (false, &[(3, record(3))]),
                "host:0",
                after
            )
            .await
            .unwrap(),
        "an expired lease writes nothing"
    );
    store
        .claim_due_migration("host:1", after, after + Duration::seconds(3), &limits(true))
        .await
        .unwrap()
        .unwrap();
    assert!(
        !store
            .renew_lease(m.id, "host:0", after + Duration::seconds(3))
            .await
            .unwrap()
    );
    assert!(
        !store
            .save_folder_checkpoint(m.id, "Sent", r#"{"n":4}"#, (false, &[]), "host:0", after)
            .await
            .unwrap()
    );
    assert!(
        store
            .save_folder_checkpoint(m.id, "Sent", r#"{"n":5}"#, (false, &[]), "host:1", after)
            .await
            .unwrap()
    );
    assert_eq!(
        checkpoints(store).await,
        vec![
            ("INBOX".to_owned(), r#"{"n":2}"#.to_owned()),
            ("Sent".to_owned(), r#"{"n":5}"#.to_owned()),
        ]
    );
    assert!(
        !store.ledger(m.id).await.unwrap()["INBOX"].contains_key(&3),
        "an expired lease writes no ledger entry"
    );

    // A folder whose UIDs changed meaning starts a new ledger; an entry changes in place.
    let mut changed = record(1);
    changed.removed = true;
    assert!(
        store
            .save_folder_checkpoint(
                m.id,
                "INBOX",
                "{}",
                (true, &[(7, record(7))]),
                "host:1",
                after
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .save_folder_checkpoint(
                m.id,
                "INBOX",
                "{}",
                (false, &[(7, changed.clone())]),
                "host:1",
                after
            )
            .await
            .unwrap()
    );
    let ledger = store.ledger(m.id).await.unwrap();
    assert_eq!(ledger["INBOX"].len(), 1);
    assert_eq!(ledger["INBOX"][&7], changed);
}

/// The partial unique index lists the active statuses itself (a schema migration cannot
/// call the server's code): this proves its list and `MigrationStatus::is_active` agree.
async fn the_database_keeps_one_active_migration_per_mailbox_for_exactly_the_active_statuses(
    store: &Store,
) {
    let now = Utc::now();
    for (n, status) in MigrationStatus::ALL.into_iter().enumerate() {
        let tx = store.begin().await.unwrap();
        let mut first = new_migration(200 + n, Work::Validate, now);
        first.status = status;
        tx.insert_migration(first, now).await.unwrap();
        let mut second = new_migration(200 + n, Work::Validate, now);
        second.status = status;
        let again = tx.insert_migration(second, now).await;
        if status.is_active() {
            assert!(
                matches!(again, Err(StoreError::ActiveMigrationExists)),
                "{status}: a second active migration of one mailbox was stored"
            );
        } else {
            assert!(again.is_ok(), "{status}: {again:?}");
        }
    }
    // A status change that would make a second one active is refused too.
    let tx = store.begin().await.unwrap();
    let mut done = new_migration(300, Work::Validate, now);
    done.status = MigrationStatus::Failed;
    let done = tx.insert_migration(done, now).await.unwrap();
    tx.insert_migration(new_migration(300, Work::Validate, now), now)
        .await
        .unwrap();
    let retried = tx
        .change_migration_status(
            done.id,
            MigrationStatus::Failed,
            MigrationStatus::Pending,
            Default::default(),
            now,
        )
        .await;
    assert!(
        matches!(retried, Err(StoreError::ActiveMigrationExists)),
        "{retried:?}"
    );
    drop(tx);

    // Outside the index: a completed migration with a synchronisation pass waiting (or
    // running) keeps its mailbox busy; without work it does not.
    let tx = store.begin().await.unwrap();
    let mut syncing = new_migration(400, Work::Pass(PassKind::Sync), now);
    syncing.status = MigrationStatus::Completed;
    let syncing = tx.insert_migration(syncing, now).await.unwrap();
    let key = ferry::store::dest_key(syncing.kind, &syncing.dest);
    assert_eq!(tx.mailbox_busy(&key, None).await.unwrap(), Some(syncing.id));
    assert_eq!(tx.mailbox_busy(&key, Some(syncing.id)).await.unwrap(), None);
    let mut idle = new_migration(401, Work::Validate, now);
    idle.status = MigrationStatus::Completed;
    idle.next_work = None;
    let idle = tx.insert_migration(idle, now).await.unwrap();
    assert_eq!(
        tx.mailbox_busy(&ferry::store::dest_key(idle.kind, &idle.dest), None)
            .await
            .unwrap(),
        None
    );
}
