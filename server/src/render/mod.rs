//! The minijinja environment: every page and email template, compiled into the binary
//! from `templates/` so that a release build needs no files beside it.
//!
//! Templates never reach the database: each page or email gets one context value,
//! built by its caller. HTML templates are auto-escaped; `.txt` ones are not.

use anyhow::Context;
use minijinja::Environment;
use minijinja::value::{Serde, Value};
use serde::Serialize;

use crate::domain::{EmailAddress, NewEmail};

/// Every template, by its path under `templates/`. A test in `tests/` fails when a file
/// there is missing from this list.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "layouts/base.html",
        include_str!("../../../templates/layouts/base.html"),
    ),
    (
        "layouts/email.html",
        include_str!("../../../templates/layouts/email.html"),
    ),
    (
        "console/login.html",
        include_str!("../../../templates/console/login.html"),
    ),
    (
        "console/dashboard.html",
        include_str!("../../../templates/console/dashboard.html"),
    ),
    (
        "console/_audit_table.html",
        include_str!("../../../templates/console/_audit_table.html"),
    ),
    (
        "console/audit.html",
        include_str!("../../../templates/console/audit.html"),
    ),
    (
        "console/users.html",
        include_str!("../../../templates/console/users.html"),
    ),
    (
        "console/account.html",
        include_str!("../../../templates/console/account.html"),
    ),
    (
        "console/outbox.html",
        include_str!("../../../templates/console/outbox.html"),
    ),
    (
        "console/outbox_item.html",
        include_str!("../../../templates/console/outbox_item.html"),
    ),
    (
        "console/migrations.html",
        include_str!("../../../templates/console/migrations.html"),
    ),
    (
        "console/migration.html",
        include_str!("../../../templates/console/migration.html"),
    ),
    (
        "console/migration_new.html",
        include_str!("../../../templates/console/migration_new.html"),
    ),
    (
        "console/schedule.html",
        include_str!("../../../templates/console/schedule.html"),
    ),
    (
        "console/settings.html",
        include_str!("../../../templates/console/settings.html"),
    ),
    (
        "email/test_email.txt",
        include_str!("../../../templates/email/test_email.txt"),
    ),
    (
        "email/test_email.html",
        include_str!("../../../templates/email/test_email.html"),
    ),
    (
        "console/error.html",
        include_str!("../../../templates/console/error.html"),
    ),
    (
        "email/account_created.txt",
        include_str!("../../../templates/email/account_created.txt"),
    ),
    (
        "email/account_created.html",
        include_str!("../../../templates/email/account_created.html"),
    ),
    (
        "email/migration_received.txt",
        include_str!("../../../templates/email/migration_received.txt"),
    ),
    (
        "email/migration_received.html",
        include_str!("../../../templates/email/migration_received.html"),
    ),
    (
        "email/_report.txt",
        include_str!("../../../templates/email/_report.txt"),
    ),
    (
        "email/_report.html",
        include_str!("../../../templates/email/_report.html"),
    ),
    (
        "email/migration_scheduled.txt",
        include_str!("../../../templates/email/migration_scheduled.txt"),
    ),
    (
        "email/migration_scheduled.html",
        include_str!("../../../templates/email/migration_scheduled.html"),
    ),
    (
        "email/pass_started.txt",
        include_str!("../../../templates/email/pass_started.txt"),
    ),
    (
        "email/pass_started.html",
        include_str!("../../../templates/email/pass_started.html"),
    ),
    (
        "email/pass_finished.txt",
        include_str!("../../../templates/email/pass_finished.txt"),
    ),
    (
        "email/pass_finished.html",
        include_str!("../../../templates/email/pass_finished.html"),
    ),
    (
        "email/action_needed.txt",
        include_str!("../../../templates/email/action_needed.txt"),
    ),
    (
        "email/action_needed.html",
        include_str!("../../../templates/email/action_needed.html"),
    ),
    (
        "email/migration_completed.txt",
        include_str!("../../../templates/email/migration_completed.txt"),
    ),
    (
        "email/migration_completed.html",
        include_str!("../../../templates/email/migration_completed.html"),
    ),
    (
        "email/migration_failed.txt",
        include_str!("../../../templates/email/migration_failed.txt"),
    ),
    (
        "email/migration_failed.html",
        include_str!("../../../templates/email/migration_failed.html"),
    ),
];

/// Jinja's `filesizeformat` (decimal units): minijinja keeps it in minijinja-contrib,
/// a crate for this one filter.
fn filesizeformat(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000.0 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A console time ("2026-11-21 16:25", UTC) as a `<time>` element that the page's
/// script shows in the viewer's time zone; without the script it reads as UTC.
fn when(utc: Option<String>) -> minijinja::Value {
    match utc.filter(|t| !t.is_empty()) {
        Some(t) => {
            let t = minijinja::HtmlEscape(&t).to_string();
            minijinja::Value::from_safe_string(format!(
                "<time datetime=\"{}Z\" data-local>{t} UTC</time>",
                t.replace(' ', "T")
            ))
        }
        None => minijinja::Value::from("–"),
    }
}

/// The console's stylesheet, served at `/static/ferry.css`.
pub const STYLESHEET: &str = include_str!("../../../templates/static/ferry.css");

#[derive(Debug)]
pub struct Renderer {
    env: Environment<'static>,
}

impl Renderer {
    pub fn new() -> anyhow::Result<Self> {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        env.add_filter("filesizeformat", filesizeformat);
        env.add_filter("when", when);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .with_context(|| format!("Template {name} does not compile"))?;
        }
        Ok(Self { env })
    }

    /// Renders a console page.
    pub fn page<C: Serialize>(&self, name: &str, context: &C) -> anyhow::Result<String> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(Value::from(Serde(context))))
            .with_context(|| format!("Failed to render {name}"))
    }

    /// Renders `email/NAME.txt` (its `subject` and `body` blocks) and
    /// `email/NAME.html` into an email ready for the outbox.
    pub fn email<C: Serialize>(
        &self,
        name: &'static str,
        to: Vec<EmailAddress>,
        context: &C,
        about: Option<(&'static str, String)>,
    ) -> anyhow::Result<NewEmail> {
        let text = self
            .env
            .get_template(&format!("email/{name}.txt"))
            .with_context(|| format!("No text template for email {name}"))?;
        let mut captured = text
            .render_captured(Value::from(Serde(context)))
            .with_context(|| format!("Failed to render email {name}"))?;
        let subject = captured
            .with_state_mut(|state| state.render_block("subject"))
            .with_context(|| format!("Email {name} has no subject block"))?
            .trim()
            .to_owned();
        let body_text = captured
            .with_state_mut(|state| state.render_block("body"))
            .with_context(|| format!("Email {name} has no body block"))?
            .trim()
            .to_owned()
            + "\n";
        let html_context =
            minijinja::context! { subject => &subject, ..Value::from(Serde(context)) };
        let body_html = self
            .env
            .get_template(&format!("email/{name}.html"))
            .and_then(|t| t.render(html_context))
            .with_context(|| format!("Failed to render the HTML of email {name}"))?;
        Ok(NewEmail {
            template: name,
            to,
            subject,
            body_text,
            body_html,
            about,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_has_a_subject_a_text_and_an_escaped_html_part() {
        let r = Renderer::new().unwrap();
        let to = vec![EmailAddress::parse("to", "ana@example.com").unwrap()];
        let email = r
            .email(
                "account_created",
                to,
                &serde_json::json!({
                    "name": "Ana <script>", "email": "ana@example.com", "role": "staff",
                    "created_by": "Bob", "login_url": "https://ferry.example/login"
                }),
                None,
            )
            .unwrap();
        assert_eq!(email.subject, "Your Ferry account is ready");
        assert!(
            email.body_text.starts_with("Hello Ana <script>,"),
            "{}",
            email.body_text
        );
        assert!(
            email.body_html.contains("Hello Ana &lt;script&gt;,"),
            "{}",
            email.body_html
        );
        assert!(
            email
                .body_html
                .contains("<title>Your Ferry account is ready</title>")
        );
    }

    #[test]
    fn every_migration_email_renders_with_its_report() {
        let r = Renderer::new().unwrap();
        let to = vec![EmailAddress::parse("to", "ana@example.com").unwrap()];
        let context = serde_json::json!({
            "id": 7, "source": "ana@old on imap.old", "destination": "ana@new on imap.new",
            "window": "Tuesday 1 December 2026 at 21:00 CET", "two_pass": true,
            "mx_domain": "new.example", "mx_hosts": ["10 mx1.provider.example"],
            "url": "https://ferry.example/migrations/7", "grace": "1 hour",
            "pass": {"number": 1, "kind": "pre_mx", "label": "pre-MX pass"},
            "need": "mx", "side": "source", "account": "ana@old", "error": "refused",
            "report": {"totals": {"copied": 3, "skipped": 1, "failed": 1, "bytes": 2_500_000},
                "folders": [{"source_path": "INBOX", "copied": 3, "skipped": 1, "failed": 1,
                    "failures": [{"uid": 9, "reason": "too big"}]}]},
        });
        for name in [
            "migration_received",
            "migration_scheduled",
            "pass_started",
            "pass_finished",
            "action_needed",
            "migration_completed",
            "migration_failed",
        ] {
            let email = r.email(name, to.clone(), &context, None).unwrap();
            assert!(email.subject.contains("#7"), "{name}: {}", email.subject);
            assert!(!email.body_html.is_empty(), "{name}");
        }
        let mx = r.email("action_needed", to, &context, None).unwrap();
        assert!(
            mx.body_text
                .contains("new.example.  MX  10 mx1.provider.example.")
        );
        assert!(mx.body_text.contains("message 9 was refused: too big"));
        assert!(mx.body_text.contains("(2.5 MB)"), "{}", mx.body_text);
        assert_eq!(filesizeformat(999.0), "999 bytes");
    }
}
