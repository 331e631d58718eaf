//! `ferry seed`: demo data from `seeds/demo.json`, compiled in. Idempotent: what exists
//! already is left as it is. Never run by a migration.

use secrecy::SecretString;
use serde::Deserialize;

use crate::crypto;
use crate::domain::{Actor, EmailAddress, Role};
use crate::service::{NewStaff, ServiceError, Services};

const DEMO: &str = include_str!("../../seeds/demo.json");

#[derive(Deserialize)]
struct Demo {
    staff: Vec<DemoStaff>,
}

#[derive(Deserialize)]
struct DemoStaff {
    email: String,
    name: String,
    role: String,
}

/// One line of what seeding did, for the command to print.
#[derive(Debug)]
pub enum Seeded {
    Created {
        email: EmailAddress,
        role: Role,
        password: SecretString,
    },
    AlreadyThere {
        email: String,
    },
}

pub async fn apply(services: &Services) -> anyhow::Result<Vec<Seeded>> {
    let demo: Demo = serde_json::from_str(DEMO)?;
    let existing: Vec<String> = services
        .store()
        .list_users()
        .await?
        .into_iter()
        .map(|u| u.email.to_string())
        .collect();
    let mut report = Vec::new();
    for staff in demo.staff {
        let email = EmailAddress::parse("email", &staff.email)?;
        if existing.contains(&email.to_string()) {
            report.push(Seeded::AlreadyThere {
                email: email.to_string(),
            });
            continue;
        }
        let role: Role = staff.role.parse()?;
        let password = crypto::random_password()?;
        let new = NewStaff {
            email: email.as_str(),
            name: &staff.name,
            role,
            password: password.clone(),
        };
        match services.create_user(&Actor::Cli, new, None).await {
            Ok(user) => report.push(Seeded::Created {
                email: user.email,
                role,
                password,
            }),
            Err(ServiceError::Invalid(errors))
                if errors.iter().any(|e| e.message.contains("already exists")) =>
            {
                report.push(Seeded::AlreadyThere {
                    email: email.to_string(),
                });
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(report)
}
