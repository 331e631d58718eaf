//! A migration request: every field checked (the errors of parsing and of the rules
//! answered at once), the window against the notice rule, the hosts resolved and
//! reachable, the passwords encrypted; then admitted within capacity and the
//! one-active-migration-per-mailbox rule, with its audit event and "received" email.

use chrono::{DateTime, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use secrecy::{ExposeSecret, SecretString};

use super::{ServiceError, ServiceResult, Services};
use crate::domain::{
    Actor, EmailAddress, Endpoint, ErrorCode, FieldError, Migration, MigrationKind,
    MigrationOptions, MigrationRequest, MigrationStatus, NewAuditEvent, Parsed, PassKind, Scope,
    Security, ServerAccount, ServerInput, WindowError, WindowRules, Work,
};
use crate::render::emails::MigrationNews;
use crate::store::{NewMigration, StoreError};

/// How far ahead a window may be (a year 9999 window was once accepted).
pub const MAX_WINDOW_DAYS: i64 = 366;

/// The options of a request; what did not parse is added to `errors`.
pub(super) fn request_options(
    req: &MigrationRequest,
    errors: &mut Vec<FieldError>,
) -> MigrationOptions {
    fn given<T: Clone>(value: &Option<Parsed<T>>, errors: &mut Vec<FieldError>) -> Option<T> {
        value.clone().and_then(|v| take(v, errors))
    }
    let defaults = MigrationOptions::default();
    MigrationOptions {
        mode: given(&req.mode, errors).unwrap_or(defaults.mode),
        duplicates: given(&req.duplicates, errors).unwrap_or(defaults.duplicates),
        folder_strategy: given(&req.folder_strategy, errors).unwrap_or(defaults.folder_strategy),
        import_since: given(&req.import_since, errors),
        folder_map: req
            .folder_map
            .iter()
            .filter_map(|m| take(m.clone(), errors))
            .collect(),
        delete_source: req.delete_source,
        count_first: req.count_first,
        selected_folders: req.selected_folders.clone(),
        excluded_folders: req.excluded_folders.clone(),
        sync_deletions: req.sync_deletions,
        policy: given(&req.policy, errors).unwrap_or(defaults.policy),
    }
}

/// The requester's address, required.
pub(super) fn requester(
    req: &MigrationRequest,
    errors: &mut Vec<FieldError>,
) -> Option<EmailAddress> {
    match req.requester_email.clone() {
        Some(parsed) => take(parsed, errors),
        None => {
            errors.push(FieldError::new(
                "requester_email",
                "the requester's email address is required",
            ));
            None
        }
    }
}

/// The value, or `None` with its error added to `errors`.
pub(super) fn take<T>(parsed: Parsed<T>, errors: &mut Vec<FieldError>) -> Option<T> {
    parsed.map_err(|e| errors.push(e)).ok()
}

/// The domain whose MX is watched: as given, or the destination username's, or the
/// requester's.
fn mx_domain_of(
    req: &MigrationRequest,
    dest: Option<&ServerAccount>,
    requester: Option<&EmailAddress>,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    match req
        .mx_domain
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        Some(d) => match crate::domain::domain_name(d) {
            Ok(d) => Some(d),
            Err(message) => {
                errors.push(FieldError::new("mx_domain", message));
                None
            }
        },
        None => dest
            .and_then(|d| {
                d.username
                    .rsplit_once('@')
                    .map(|(_, dom)| dom.to_lowercase())
            })
            .or_else(|| requester.map(|r| r.domain().to_lowercase())),
    }
}

/// The destination as given, or, when it is the provider's own server with no
/// password and no admin given and the provider has a master user, logged in to by
/// that master user on the mailbox's behalf.
fn with_master_user<'a>(
    input: &'a ServerInput,
    provider: &crate::config::ProviderSettings,
) -> std::borrow::Cow<'a, ServerInput> {
    let no_password = input
        .password
        .as_ref()
        .is_none_or(|p| p.expose_secret().is_empty());
    match &provider.master_password {
        Some(master)
            if no_password
                && input.host.trim().is_empty()
                && input.authuser.is_none()
                && !provider.master_user.trim().is_empty() =>
        {
            std::borrow::Cow::Owned(ServerInput {
                password: Some(master.clone()),
                authuser: Some(provider.master_user.trim().to_owned()),
                ..input.clone()
            })
        }
        _ => std::borrow::Cow::Borrowed(input),
    }
}

/// One side's account and password, or `None` with every error of its fields added.
fn checked_side(
    side: &'static str,
    input: &ServerInput,
    defaults: Option<(&str, u16, Security)>,
    errors: &mut Vec<FieldError>,
) -> Option<(ServerAccount, SecretString)> {
    let account = server_account(side, input, defaults)
        .map_err(|e| errors.extend(e))
        .ok();
    let field = if side == "source" {
        "source.password"
    } else {
        "destination.password"
    };
    let password = input
        .password
        .clone()
        .filter(|p| !p.expose_secret().is_empty());
    if password.is_none() {
        errors.push(FieldError::new(field, "the password is required"));
    }
    account.zip(password)
}

/// One side's account from what was typed; `defaults` fill host, port and security.
pub(super) fn server_account(
    side: &'static str,
    input: &ServerInput,
    defaults: Option<(&str, u16, Security)>,
) -> Result<ServerAccount, Vec<FieldError>> {
    let [host_field, port_field, username_field] = match side {
        "source" => ["source.host", "source.port", "source.username"],
        "destination" => [
            "destination.host",
            "destination.port",
            "destination.username",
        ],
        _ => ["host", "port", "username"],
    };
    let mut errors = Vec::new();
    if input.dav_url.is_some() {
        let field = match side {
            "source" => "source.dav_url",
            "destination" => "destination.dav_url",
            _ => "dav_url",
        };
        errors.push(FieldError::new(
            field,
            "a CardDAV/CalDAV address belongs to a contacts or calendars migration; a mail migration copies from an IMAP server (host, port, security)",
        ));
    }
    let host = match (input.host.trim(), defaults) {
        ("", Some((h, _, _))) => h.to_owned(),
        ("", None) => {
            errors.push(FieldError::new(
                host_field,
                "the server's host name is required",
            ));
            String::new()
        }
        (h, _) => crate::domain::host_name(h).unwrap_or_else(|message| {
            errors.push(FieldError::new(host_field, message));
            String::new()
        }),
    };
    // The provider's port and security go with the provider's host only.
    let same_server = defaults.filter(|_| input.host.trim().is_empty());
    let security = match (&input.security, same_server) {
        (Some(parsed), _) => take(parsed.clone(), &mut errors).unwrap_or(Security::Ssl),
        (None, Some((_, _, security))) => security,
        (None, None) => Security::Ssl,
    };
    let port = input
        .port
        .or(same_server.map(|(_, p, _)| p))
        .unwrap_or_else(|| security.default_port());
    if port == 0 {
        errors.push(FieldError::new(
            port_field,
            "the port must be between 1 and 65535 (993 for IMAP over TLS, 143 otherwise)",
        ));
    }
    let username = input.username.trim().to_owned();
    if username.is_empty() {
        errors.push(FieldError::new(
            username_field,
            "the username (usually the email address) is required",
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ServerAccount {
        host,
        port,
        security,
        username,
        authuser: input.authuser.clone().filter(|a| !a.trim().is_empty()),
    })
}

fn earliest_sentence(rules: &WindowRules, now: chrono::DateTime<Utc>, tz: Tz) -> String {
    match rules.earliest(now, tz) {
        Some(t) => format!(
            "the earliest allowed is {}",
            t.format("%Y-%m-%dT%H:%M (%A, %Z)")
        ),
        None => "no window in the next two weeks fits the off-hours".into(),
    }
}

fn window_sentence(
    rules: &WindowRules,
    why: &WindowError,
    now: chrono::DateTime<Utc>,
    tz: Tz,
) -> String {
    let rule = match why {
        WindowError::DoesNotExist => {
            format!("that time does not exist in {tz} (the clocks go forward)")
        }
        WindowError::TooSoon { hours } => {
            format!("a window must start at least {hours} hours ahead")
        }
        WindowError::WeekendTooSoon { hours } => {
            format!("a window on a Saturday or Sunday must start at least {hours} hours ahead")
        }
        WindowError::OutsideOffHours => format!(
            "a window must start in the off-hours, {} to {} in {tz}",
            rules.off_hours_start.format("%H:%M"),
            rules.off_hours_end.format("%H:%M")
        ),
    };
    format!("{rule}; {}", earliest_sentence(rules, now, tz))
}

/// `text` with its first letter in upper case, for an error used as a sentence.
fn upper_first(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The names of one side's free-text fields in errors: host, username, password,
/// authuser.
const SOURCE_FIELDS: [&str; 4] = [
    "source.host",
    "source.username",
    "source.password",
    "source.authuser",
];

const DEST_FIELDS: [&str; 4] = [
    "destination.host",
    "destination.username",
    "destination.password",
    "destination.authuser",
];

pub(super) const SERVER_FIELDS: [&str; 4] = ["host", "username", "password", "authuser"];

/// The free-text fields of one side, with the names its errors use (the others were
/// parsed where they entered, and their errors quote a bounded part of them).
pub(super) fn server_texts<'a>(
    names: [&'static str; 4],
    input: &'a ServerInput,
) -> Vec<(&'static str, Option<&'a str>)> {
    let [host, username, password, authuser] = names;
    vec![
        (host, Some(input.host.as_str())),
        (username, Some(input.username.as_str())),
        (password, input.password.as_ref().map(|p| p.expose_secret())),
        (authuser, input.authuser.as_deref()),
    ]
}

fn request_texts(req: &MigrationRequest) -> Vec<(&'static str, Option<&str>)> {
    let mut texts = server_texts(SOURCE_FIELDS, &req.source);
    texts.extend(server_texts(DEST_FIELDS, &req.destination));
    texts.push(("mx_domain", req.mx_domain.as_deref()));
    texts.push(("source.dav_url", req.source.dav_url.as_deref()));
    texts.push(("destination.dav_url", req.destination.dav_url.as_deref()));
    texts
}

/// The lists of a request as texts (a folder mapping as `SOURCE=DESTINATION`).
fn request_lists(req: &MigrationRequest) -> [(&'static str, Vec<String>); 3] {
    [
        ("selected_folders", req.selected_folders.clone()),
        ("excluded_folders", req.excluded_folders.clone()),
        (
            "folder_map",
            req.folder_map
                .iter()
                .map(|m| {
                    m.as_ref()
                        .map(|m| format!("{}={}", m.source, m.dest))
                        .unwrap_or_default()
                })
                .collect(),
        ),
    ]
}

/// One error per field longer than the limits allow (a list's entries count as texts).
pub(super) fn oversized(
    texts: Vec<(&'static str, Option<&str>)>,
    lists: impl IntoIterator<Item = (&'static str, Vec<String>)>,
    limits: &crate::config::LimitSettings,
) -> Vec<FieldError> {
    let max = limits.text_chars;
    let mut errors: Vec<FieldError> = texts
        .into_iter()
        .filter(|(_, text)| text.is_some_and(|t| t.chars().count() > max))
        .map(|(field, _)| FieldError::new(field, format!("at most {max} characters")))
        .collect();
    for (field, items) in lists {
        if items.len() > limits.list_items {
            errors.push(FieldError::new(
                field,
                format!("at most {} entries", limits.list_items),
            ));
        } else if items.iter().any(|i| i.chars().count() > max) {
            errors.push(FieldError::new(
                field,
                format!("each entry at most {max} characters"),
            ));
        }
    }
    errors
}

impl Services {
    pub fn window_rules(&self) -> Result<WindowRules, anyhow::Error> {
        let settings = self.settings();
        let s = &settings.schedule;
        let time = |field: &str, v: &str| {
            NaiveTime::parse_from_str(v, "%H:%M")
                .map_err(|_| anyhow::anyhow!("schedule.{field} is not HH:MM: {v:?}"))
        };
        Ok(WindowRules {
            notice_hours: s.notice_hours,
            weekend_notice_hours: s.weekend_notice_hours,
            off_hours_start: time("off_hours_start", &s.off_hours_start)?,
            off_hours_end: time("off_hours_end", &s.off_hours_end)?,
        })
    }

    /// The window a person asked for, as a local time in their time zone: its instant
    /// and the zone, or the rule it breaks as a field error. No window is `None`,
    /// allowed only with `may_override` (start as soon as a slot is free).
    pub(super) fn check_window(
        &self,
        now: DateTime<Utc>,
        start: Option<&Parsed<NaiveDateTime>>,
        time_zone: Option<&Parsed<Tz>>,
        may_override: bool,
        errors: &mut Vec<FieldError>,
    ) -> anyhow::Result<(Option<DateTime<Utc>>, Tz)> {
        let tz = match time_zone {
            None => Some(chrono_tz::UTC),
            Some(parsed) => take(parsed.clone(), errors),
        };
        let rules = self.window_rules()?;
        let mut window_start = None;
        match (start, tz) {
            (Some(Err(e)), _) => errors.push(e.clone()),
            (Some(Ok(local)), Some(tz)) => match rules.check(now, *local, tz) {
                Ok(at) if at > now + chrono::Duration::days(MAX_WINDOW_DAYS) => {
                    errors.push(FieldError::new(
                        "window.start",
                        format!(
                            "a window starts within {MAX_WINDOW_DAYS} days; {} is further",
                            local.format("%Y-%m-%dT%H:%M")
                        ),
                    ));
                }
                Ok(at) => window_start = Some(at),
                Err(why) => errors.push(FieldError::new(
                    "window.start",
                    window_sentence(&rules, &why, now, tz),
                )),
            },
            (None, Some(tz)) if !may_override => errors.push(FieldError::new(
                "window.start",
                format!(
                    "a window is required; {}. Starting at once needs the {} permission.",
                    earliest_sentence(&rules, now, tz),
                    Scope::MigrationsOverride
                ),
            )),
            _ => {}
        }
        Ok((window_start, tz.unwrap_or(chrono_tz::UTC)))
    }

    /// Each named host resolves, and only to addresses Ferry may reach; `hosts` keeps
    /// each name's answer, so a list of many rows asks once per server.
    async fn check_hosts(
        &self,
        accounts: [(&'static str, Option<&ServerAccount>); 2],
        hosts: &mut HostChecks,
        errors: &mut Vec<FieldError>,
    ) {
        for (field, account) in accounts {
            let Some(a) = account else { continue };
            if let Err(message) = self.check_host(&a.host, a.port, hosts).await {
                errors.push(FieldError::new(field, message));
            }
        }
    }

    /// `host` resolves, and only to addresses Ferry may reach; asked once per request
    /// or list.
    pub(super) async fn check_host(
        &self,
        host: &str,
        port: u16,
        hosts: &mut HostChecks,
    ) -> Result<(), String> {
        let key = (host.to_ascii_lowercase(), port);
        if let Some(answer) = hosts.0.get(&key) {
            return answer.clone();
        }
        let answer = crate::connectors::net::resolve(host, port, &self.reach())
            .await
            .map(|_| ())
            .map_err(|err| format!("{}.", upper_first(&err.to_string())));
        hosts.0.insert(key, answer.clone());
        answer
    }

    /// Records a migration request: validated field by field, the window checked
    /// against the notice rule, capacity and the destination mailbox checked, the
    /// passwords encrypted; the requester (and staff) get a "request received" email.
    pub async fn request_migration(
        &self,
        actor: &Actor,
        may_override: bool,
        req: MigrationRequest,
    ) -> ServiceResult<Migration> {
        let new = self
            .check_request(actor, may_override, req, &mut HostChecks::default())
            .await?;
        self.admit(actor, new, self.now()).await
    }

    /// A request checked by every rule that does not need the database: each field, the
    /// window against the notice rule, the hosts resolved; ready to admit, its passwords
    /// encrypted. Every problem is answered at once.
    pub(super) async fn check_request(
        &self,
        actor: &Actor,
        may_override: bool,
        req: MigrationRequest,
        hosts: &mut HostChecks,
    ) -> ServiceResult<NewMigration> {
        let now = self.now();
        let settings = self.settings();
        let too_long = oversized(request_texts(&req), request_lists(&req), &settings.limits);
        if !too_long.is_empty() {
            return Err(ServiceError::Invalid(too_long));
        }
        let mut errors: Vec<FieldError> = Vec::new();
        let kind = req
            .kind
            .clone()
            .and_then(|k| take(k, &mut errors))
            .unwrap_or_default();
        if kind != MigrationKind::Mail {
            return self
                .check_items_request(actor, may_override, kind, req, errors, hosts)
                .await;
        }
        if req.source.upload_id.is_some() {
            errors.push(FieldError::new(
                "source.upload_id",
                "mail cannot be imported from a file yet; a file source is for contacts (.vcf, kind contacts) and calendars (.ics, kind calendars)",
            ));
        }
        let provider = &settings.provider;
        let source = checked_side("source", &req.source, None, &mut errors);
        let provider_server = (
            provider.imap_host.as_str(),
            provider.imap_port,
            provider.imap_security,
        );
        let dest = checked_side(
            "destination",
            &with_master_user(&req.destination, provider),
            Some(provider_server),
            &mut errors,
        );
        let requester = requester(&req, &mut errors);
        let options = request_options(&req, &mut errors);
        let customer_ref = customer_ref(req.customer_ref.as_deref(), &mut errors);
        let (window_start, tz) = self.check_window(
            now,
            req.window_start.as_ref(),
            req.time_zone.as_ref(),
            may_override,
            &mut errors,
        )?;
        let dest_account = dest.as_ref().map(|(account, _)| account);
        let mx_domain = mx_domain_of(&req, dest_account, requester.as_ref(), &mut errors);
        let source_account = source.as_ref().map(|(account, _)| account);
        let accounts = [
            ("source.host", source_account),
            ("destination.host", dest_account),
        ];
        self.check_hosts(accounts, hosts, &mut errors).await;
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        let (Some((source, source_pw)), Some((dest, dest_pw)), Some(requester), Some(mx_domain)) =
            (source, dest, requester, mx_domain)
        else {
            return Err(ServiceError::Internal(anyhow::anyhow!(
                "validation let a field through"
            )));
        };

        let new = NewMigration {
            status: MigrationStatus::Pending,
            created_by: actor.to_string(),
            requester_email: requester.as_str().to_owned(),
            source_secret: self.cipher.encrypt(&source_pw)?,
            dest_secret: self.cipher.encrypt(&dest_pw)?,
            kind: MigrationKind::Mail,
            source: Endpoint::Imap(source),
            dest: Endpoint::Imap(dest),
            options,
            two_pass: req.two_pass.unwrap_or(true),
            mx_domain,
            window_start,
            time_zone: tz.name().to_owned(),
            next_work: Some(Work::Validate),
            resume_work: Some(Work::Pass(PassKind::PreMx)),
            next_run_at: Some(now),
            customer_token: self.new_customer_token()?,
            customer_ref,
            ticket: None,
            project: None,
            paused: false,
        };
        Ok(new)
    }

    /// A new customer page token: encrypted (for the links in emails) and its digest
    /// (to find the migration from a link).
    pub(super) fn new_customer_token(&self) -> ServiceResult<(String, String)> {
        let token = crate::crypto::random_token(24)?;
        let digest = crate::crypto::token_digest(&token);
        Ok((self.cipher.encrypt(&SecretString::from(token))?, digest))
    }

    /// Stores a checked request within capacity and the one-active-migration rule, with
    /// its audit event and its "received" email, in one transaction.
    pub(super) async fn admit(
        &self,
        actor: &Actor,
        new: NewMigration,
        now: DateTime<Utc>,
    ) -> ServiceResult<Migration> {
        let window_override = new.window_start.is_none();
        let dest_name = new.dest.username().to_owned();
        let tx = self.store.begin().await?;
        // Both rules are kept by the database (the admission lock and the one-active
        // index), so concurrent requests cannot slip between a check and the insert.
        let max_active = u64::from(self.settings().capacity.max_active);
        if tx.lock_admission_and_count_active().await? >= max_active {
            return Err(ServiceError::Unavailable {
                code: ErrorCode::MigrationCapacityReached,
                message: format!(
                    "Ferry is at its limit of {max_active} migrations in progress; try again in a few minutes."
                ),
            });
        }
        // A completed migration of the mailbox running a synchronisation pass is
        // outside the one-active index: it is asked under the same lock.
        if tx
            .mailbox_busy(&crate::store::dest_key(new.kind, &new.dest), None)
            .await?
            .is_some()
        {
            return Err(ServiceError::Conflict {
                code: ErrorCode::ActiveMigrationExists,
                message: format!(
                    "{dest_name} already has a migration in progress; cancel it or wait for it to finish."
                ),
            });
        }
        let migration = match tx.insert_migration(new, now).await {
            Err(StoreError::ActiveMigrationExists) => {
                return Err(ServiceError::Conflict {
                    code: ErrorCode::ActiveMigrationExists,
                    message: format!(
                        "{dest_name} already has a migration in progress; cancel it or wait for it to finish."
                    ),
                });
            }
            other => other?,
        };
        let mut event = NewAuditEvent::new(actor, "migration.requested");
        event.subject = Some(("migration", migration.id.to_string()));
        event.detail = serde_json::json!({
            "source": migration.source.host(),
            "window_start": migration.window_start,
            "override": window_override,
        });
        tx.audit(event, now).await?;
        self.enqueue(&tx, &migration, &MigrationNews::Received {}, now)
            .await?;
        tx.commit().await?;
        tracing::info!(migration = %migration.id, %actor, "Migration requested");
        self.dispatcher.wake();
        self.wake_workers();
        Ok(migration)
    }
}

/// The customer's reference as given: trimmed, empty as none, at most 100 characters on
/// one line.
/// What each server name resolved to, within one request or one list of them.
#[derive(Debug, Default)]
pub(super) struct HostChecks(std::collections::HashMap<(String, u16), Result<(), String>>);

pub(super) fn customer_ref(text: Option<&str>, errors: &mut Vec<FieldError>) -> Option<String> {
    let text = text.map(str::trim).filter(|t| !t.is_empty())?;
    if text.chars().count() > 100 || text.chars().any(char::is_control) {
        errors.push(FieldError::new(
            "customer_ref",
            "a customer reference is one line of at most 100 characters",
        ));
        return None;
    }
    Some(text.to_owned())
}
