//! What the desk keeps about a migration beside the work: who owns it, the customer's
//! own reference, and internal notes (audit events, so each says who and when; never
//! shown to the customer or emailed).

use serde_json::json;

use super::lifecycle::audit_as;
use super::request::customer_ref;
use super::{ServiceError, ServiceResult, Services};
use crate::domain::{Actor, Migration, MigrationId, UserId};

/// The longest note, in characters.
const NOTE_MAX: usize = 4000;

impl Services {
    /// Gives a migration an owner among the staff (or none) and the customer's
    /// reference (or none), audited.
    pub async fn assign_migration(
        &self,
        actor: &Actor,
        id: MigrationId,
        owner: Option<UserId>,
        reference: Option<&str>,
    ) -> ServiceResult<Migration> {
        let m = self.load_migration(id).await?;
        let mut errors = Vec::new();
        let reference = customer_ref(reference, &mut errors);
        let owner_email = match owner {
            Some(owner) => match self.store.find_user(owner).await? {
                Some(user) if !user.disabled => Some(user.email.to_string()),
                _ => {
                    return Err(ServiceError::field(
                        "owner",
                        "choose an active staff member, or nobody",
                    ));
                }
            },
            None => None,
        };
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        let now = self.now();
        let tx = self.store.begin().await?;
        tx.assign_migration(id, owner, reference.clone()).await?;
        audit_as(
            &tx,
            actor,
            id,
            "migration.assigned",
            json!({
                "owner": owner_email, "customer_ref": reference,
                "was_owner": m.owner.map(|o| o.0), "was_customer_ref": m.customer_ref,
            }),
            now,
        )
        .await?;
        tx.commit().await?;
        self.load_migration(id).await
    }

    /// Adds an internal note to a migration.
    pub async fn add_migration_note(
        &self,
        actor: &Actor,
        id: MigrationId,
        text: &str,
    ) -> ServiceResult<()> {
        self.load_migration(id).await?;
        let text = text.trim();
        if text.is_empty() || text.chars().count() > NOTE_MAX {
            return Err(ServiceError::field(
                "note",
                format!("write a note of 1 to {NOTE_MAX} characters"),
            ));
        }
        let now = self.now();
        let tx = self.store.begin().await?;
        audit_as(
            &tx,
            actor,
            id,
            "migration.note_added",
            json!({ "note": text }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
