//! The settings in force, for admins, and a test email through the outbox.

use poem::web::Form;
use poem::web::cookie::CookieJar;
use poem::{Response, handler};
use serde::Serialize;

use super::{CsrfForm, Layout, Staff, internal_error, redirect_with_flash};

#[derive(Serialize)]
struct Group {
    title: &'static str,
    rows: Vec<(&'static str, &'static str, String)>,
}

#[derive(Serialize)]
struct SettingsPage {
    layout: Layout,
    groups: Vec<Group>,
}

fn seconds(n: u64) -> String {
    format!("{n} s")
}

#[handler]
pub async fn page(staff: Staff) -> Response {
    if let Some(resp) = staff.reject_unless_admin() {
        return resp;
    }
    let s = &staff.services.settings;
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.join(", ")
        }
    };
    let groups = vec![
        Group {
            title: "Provider",
            rows: vec![
                (
                    "provider.imap_host",
                    "IMAP server",
                    format!(
                        "{}:{} ({})",
                        s.provider.imap_host, s.provider.imap_port, s.provider.imap_security
                    ),
                ),
                (
                    "provider.mx_hosts",
                    "MX records customers set",
                    list(&s.provider.mx_hosts),
                ),
                (
                    "provider.mx_patterns",
                    "MX hosts that mean switched",
                    list(&s.provider.mx_patterns),
                ),
            ],
        },
        Group {
            title: "Scheduling",
            rows: vec![
                (
                    "schedule.off_hours_start",
                    "Off-hours",
                    format!(
                        "{} to {} (requester's time zone)",
                        s.schedule.off_hours_start, s.schedule.off_hours_end
                    ),
                ),
                (
                    "schedule.notice_hours",
                    "Notice",
                    format!(
                        "{} h, {} h on a weekend",
                        s.schedule.notice_hours, s.schedule.weekend_notice_hours
                    ),
                ),
                (
                    "capacity.max_concurrent",
                    "Passes at once",
                    s.capacity.max_concurrent.to_string(),
                ),
                (
                    "capacity.max_active",
                    "Migrations in progress at most",
                    s.capacity.max_active.to_string(),
                ),
                (
                    "workers.connections",
                    "Connections per side per migration",
                    s.workers.connections.to_string(),
                ),
            ],
        },
        Group {
            title: "MX watch",
            rows: vec![
                (
                    "mx.nameserver",
                    "DNS server",
                    s.mx.nameserver
                        .clone()
                        .unwrap_or_else(|| "the system's".into()),
                ),
                (
                    "mx.check_seconds",
                    "Checked every",
                    seconds(s.mx.check_seconds),
                ),
                (
                    "mx.grace_seconds",
                    "Post-MX pass after the switch",
                    seconds(s.mx.grace_seconds),
                ),
            ],
        },
        Group {
            title: "Email",
            rows: vec![
                (
                    "smtp.url",
                    "SMTP server",
                    if staff.services.dispatcher.is_configured() {
                        "configured (the address is not shown: it may hold a password)".into()
                    } else {
                        "not configured: notifications wait in the outbox".into()
                    },
                ),
                ("smtp.from", "From", s.smtp.from.clone()),
                (
                    "smtp.staff_address",
                    "Staff copy to",
                    s.smtp
                        .staff_address
                        .clone()
                        .unwrap_or_else(|| "nobody".into()),
                ),
                (
                    "smtp.max_attempts",
                    "Delivery attempts",
                    s.smtp.max_attempts.to_string(),
                ),
            ],
        },
        Group {
            title: "Retention",
            rows: vec![(
                "retention.credential_days",
                "Stored passwords erased",
                format!(
                    "{} days after a migration ends",
                    s.retention.credential_days
                ),
            )],
        },
    ];
    staff.render(
        "console/settings.html",
        &SettingsPage {
            layout: staff.layout("/settings"),
            groups,
        },
    )
}

#[handler]
pub async fn test_email(staff: Staff, jar: &CookieJar, Form(form): Form<CsrfForm>) -> Response {
    if let Some(resp) = staff
        .reject_unless_admin()
        .or_else(|| staff.reject_bad_csrf(&form.csrf))
    {
        return resp;
    }
    let to = staff.session.user.email.clone();
    match staff
        .services
        .send_test_email(&staff.actor(), &to, staff.ip.clone())
        .await
    {
        Ok(()) => redirect_with_flash(
            jar,
            "/settings",
            true,
            &format!("A test email is on its way to {to}; the Outbox shows its delivery."),
        ),
        Err(err) => internal_error(&staff.services, &err),
    }
}
