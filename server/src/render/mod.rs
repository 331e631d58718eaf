//! The minijinja environment: every page and email template, embedded into the binary
//! from `templates/` by `build.rs` (minijinja-embed) so that a release build needs no
//! files beside it. Strict: a name a context lacks is an error, never an empty gap.
//!
//! Templates never reach the database: each page or email gets one context value,
//! built by its caller. HTML templates are auto-escaped; `.txt` ones are not.

use anyhow::Context;
use minijinja::Environment;
use minijinja::value::{Serde, Value};
use serde::Serialize;

use crate::domain::{EmailAddress, NewEmail};

pub mod emails;

use emails::Email;

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
/// A count as people read it: 41003 is "41,003".
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

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

/// Adds the templates `build.rs` embedded from `templates/` (checked there: a template
/// that does not parse fails the build, so the generated `expect` cannot fire).
#[allow(clippy::expect_used)]
fn load_embedded(mut env: &mut Environment<'static>) {
    minijinja_embed::load_templates!(env);
}

/// A form's errors as its template sees them: every field of the form answers (`none`
/// when it has no error), so a strict template may ask any of them, and a name the form
/// does not have fails to render instead of hiding an error.
#[derive(Debug, Clone)]
pub struct FieldErrors {
    fields: &'static [&'static str],
    errors: std::collections::BTreeMap<String, String>,
}

impl FieldErrors {
    pub fn new(
        fields: &'static [&'static str],
        errors: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        Self {
            fields,
            errors: errors.into_iter().collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

impl Serialize for FieldErrors {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        for field in self.fields {
            map.serialize_entry(field, &self.errors.get(*field))?;
        }
        for (field, message) in &self.errors {
            if !self.fields.contains(&field.as_str()) {
                map.serialize_entry(field, message)?;
            }
        }
        map.end()
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
        // A name a context does not have is an error, never an empty gap in a page or an
        // email (the tests render every template with an example of its context).
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.add_filter("filesizeformat", filesizeformat);
        env.add_filter("when", when);
        env.add_filter("count", count);
        env.add_filter("status_words", |s: String| {
            crate::domain::MigrationStatus::parse(&s).map_or(s, |st| st.words().to_owned())
        });
        load_embedded(&mut env);
        Ok(Self { env })
    }

    /// The names of every template (`console/login.html`, `email/_report.txt`, …).
    pub fn template_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .env
            .templates()
            .map(|(name, _)| name.to_owned())
            .collect();
        names.sort();
        names
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
    pub fn email<C: Email>(
        &self,
        to: Vec<EmailAddress>,
        context: &C,
        about: Option<(&'static str, String)>,
    ) -> anyhow::Result<NewEmail> {
        let name = context.name();
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
            thread: Default::default(),
            message_id: None,
            attachment: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::emails::{MigrationEmail, MigrationFacts, examples};
    use super::*;

    fn to() -> Vec<EmailAddress> {
        vec![EmailAddress::parse("to", "ana@example.com").unwrap()]
    }

    #[test]
    fn counts_read_in_thousands() {
        for (n, text) in [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (41_003, "41,003"),
            (1_234_567, "1,234,567"),
        ] {
            assert_eq!(count(n), text);
        }
    }

    #[test]
    fn an_email_has_a_subject_a_text_and_an_escaped_html_part() {
        let r = Renderer::new().unwrap();
        let email = r.email(to(), &examples::account_created(), None).unwrap();
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

    /// Every email renders from its example in strict mode, and its text is the one
    /// reviewed (insta snapshots in `snapshots/`; `cargo insta review` after a change).
    #[test]
    fn every_email_renders_from_its_example_as_reviewed() {
        let r = Renderer::new().unwrap();
        let facts = examples::facts();
        let mut rendered = vec![
            r.email(to(), &examples::account_created(), None).unwrap(),
            r.email(to(), &examples::test_email(), None).unwrap(),
            r.email(to(), &examples::ticket_received(), None).unwrap(),
            r.email(to(), &examples::ticket_reply(), None).unwrap(),
            r.email(to(), &examples::ticket_rows(), None).unwrap(),
        ];
        for project in examples::projects() {
            let email = r.email(to(), &project, None).unwrap();
            assert!(email.subject.contains("FY-7K3M-Q9P2"), "{}", email.subject);
            rendered.push(email);
        }
        // Each news as the customer gets it, and as staff do (with the server's words
        // and whether the customer got it).
        let staff = MigrationFacts {
            for_staff: true,
            url: "https://ferry.example/migrations/7".into(),
            ..facts.clone()
        };
        for facts in [&facts, &staff] {
            for news in examples::news() {
                let context = MigrationEmail { facts, news: &news };
                let email = r.email(to(), &context, None).unwrap();
                assert!(email.subject.contains("#7"), "{}", email.subject);
                rendered.push(email);
            }
        }
        let mut seen = std::collections::BTreeMap::<&str, usize>::new();
        for email in &rendered {
            assert!(!email.body_html.is_empty(), "{}", email.template);
            let n = seen.entry(email.template).or_default();
            *n += 1;
            insta::assert_snapshot!(
                format!("{}-{n}", email.template),
                format!("Subject: {}\n\n{}", email.subject, email.body_text)
            );
        }
        // Every email template in the tree has an example.
        for name in r.template_names() {
            if let Some(email) = name
                .strip_prefix("email/")
                .and_then(|n| n.strip_suffix(".txt"))
                && !email.starts_with('_')
            {
                assert!(seen.contains_key(email), "email {email} has no example");
            }
        }
        let mx = &rendered
            .iter()
            .find(|e| e.template == "action_needed" && e.body_text.contains("MX"))
            .unwrap()
            .body_text;
        assert!(
            mx.contains("new.example.  MX  10 mx1.provider.example."),
            "{mx}"
        );
        assert!(mx.contains("message 9 was refused: too big"), "{mx}");
        assert!(mx.contains("(2.5 MB)"), "{mx}");
        assert_eq!(filesizeformat(999.0), "999 bytes");
    }

    #[test]
    fn a_name_the_context_lacks_is_an_error_not_an_empty_gap() {
        let r = Renderer::new().unwrap();
        let err = r
            .page("email/test_email.html", &serde_json::json!({ "by": "x" }))
            .unwrap_err();
        assert!(format!("{err:#}").contains("undefined"), "{err:#}");
    }
}
