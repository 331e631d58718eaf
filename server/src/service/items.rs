//! A contacts or calendars request: a CardDAV/CalDAV account or an uploaded file on the
//! source side, the provider's DAV server (setting `provider.dav_url`) or another on
//! the destination side; checked field by field like a mail request, with one pass and
//! no MX to watch.

use secrecy::{ExposeSecret, SecretString};

use super::request::{HostChecks, customer_ref, request_options, requester};
use super::{ServiceError, ServiceResult, Services};
use crate::domain::{
    Actor, DavAccount, Endpoint, FieldError, FileKind, FileSource, MigrationKind, MigrationRequest,
    MigrationStatus, PassKind, ServerInput, Work,
};
use crate::store::NewMigration;

impl Services {
    /// `check_request` for a kind other than mail.
    pub(super) async fn check_items_request(
        &self,
        actor: &Actor,
        may_override: bool,
        kind: MigrationKind,
        req: MigrationRequest,
        mut errors: Vec<FieldError>,
        hosts: &mut HostChecks,
    ) -> ServiceResult<NewMigration> {
        let now = self.now();
        let settings = self.settings();
        let source = self.items_source(kind, &req.source, &mut errors).await?;
        let provider_dav = settings.provider.dav_url.trim();
        let dest = dav_side(
            "destination",
            &req.destination,
            (!provider_dav.is_empty()).then_some(provider_dav),
            &mut errors,
        );
        let requester = requester(&req, &mut errors);
        let options = request_options(&req, &mut errors);
        if options.policy == crate::domain::ItemPolicy::Merge && kind != MigrationKind::Contacts {
            errors.push(FieldError::new(
                "policy",
                "merge is for contacts (the same person's cards become one); calendars take skip, overwrite or create",
            ));
        }
        let customer_ref = customer_ref(req.customer_ref.as_deref(), &mut errors);
        let (window_start, tz) = self.check_window(
            now,
            req.window_start.as_ref(),
            req.time_zone.as_ref(),
            may_override,
            &mut errors,
        )?;
        for (field, side) in [
            ("source.dav_url", source.as_ref().map(|(e, _)| e)),
            ("destination.dav_url", dest.as_ref().map(|(e, _)| e)),
        ] {
            if let Some(Endpoint::Dav(d)) = side {
                self.check_dav_host(field, &d.url, hosts, &mut errors).await;
            }
        }
        let ticket = match req.ticket {
            Some(t) if self.store.get_ticket(t).await?.is_none() => {
                errors.push(FieldError::new("ticket", format!("there is no ticket {t}")));
                None
            }
            other => other,
        };
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        let (Some((source, source_pw)), Some((dest, dest_pw)), Some(requester)) =
            (source, dest, requester)
        else {
            return Err(ServiceError::Internal(anyhow::anyhow!(
                "validation let a field through"
            )));
        };
        // Kept for the record and the customer's page; nothing watches it.
        let mx_domain = dest.username().rsplit_once('@').map_or_else(
            || requester.domain().to_lowercase(),
            |(_, d)| d.to_lowercase(),
        );
        Ok(NewMigration {
            status: MigrationStatus::Pending,
            created_by: actor.to_string(),
            requester_email: requester.as_str().to_owned(),
            source_secret: self.cipher.encrypt(&source_pw)?,
            dest_secret: self.cipher.encrypt(&dest_pw)?,
            kind,
            source,
            dest,
            options,
            // Contacts and calendars need no MX switch: one pass copies them.
            two_pass: false,
            mx_domain,
            window_start,
            time_zone: tz.name().to_owned(),
            next_work: Some(Work::Validate),
            resume_work: Some(Work::Pass(PassKind::PreMx)),
            next_run_at: Some(now),
            customer_token: self.new_customer_token()?,
            customer_ref,
            ticket,
            project: None,
            paused: false,
        })
    }

    /// The source: a DAV account, or a file uploaded before whose kind fits.
    async fn items_source(
        &self,
        kind: MigrationKind,
        input: &ServerInput,
        errors: &mut Vec<FieldError>,
    ) -> ServiceResult<Option<(Endpoint, SecretString)>> {
        let Some(id) = input.upload_id else {
            return Ok(dav_side("source", input, None, errors));
        };
        let wanted = match kind {
            MigrationKind::Contacts => FileKind::Vcf,
            _ => FileKind::Ics,
        };
        let problem = match self.store.get_upload(id).await? {
            None => Some(format!(
                "there is no upload {id}; upload the file first (POST /api/v1/uploads)"
            )),
            Some((upload, _)) if upload.purged_at.is_some() => Some(format!(
                "the upload {id} ({}) was erased after the retention period; upload the file again",
                upload.file_name
            )),
            Some((upload, _)) if upload.kind != Some(wanted) => Some(format!(
                "the upload {id} ({}) is {}, and a {} migration imports {}",
                upload.file_name,
                upload
                    .kind
                    .map_or("not a file Ferry imports", FileKind::describe),
                kind.as_str(),
                wanted.describe()
            )),
            Some((upload, _)) => {
                return Ok(Some((
                    Endpoint::File(FileSource {
                        upload: id,
                        name: upload.file_name,
                    }),
                    // A file has no password; an empty one is stored in its place.
                    SecretString::from(String::new()),
                )));
            }
        };
        if let Some(message) = problem {
            errors.push(FieldError::new("source.upload_id", message));
        }
        Ok(None)
    }

    /// The DAV URL's host resolves, and only to addresses Ferry may reach.
    async fn check_dav_host(
        &self,
        field: &'static str,
        url: &str,
        hosts: &mut HostChecks,
        errors: &mut Vec<FieldError>,
    ) {
        let Ok(uri) = url.parse::<http::Uri>() else {
            return;
        };
        let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("http") {
                80
            } else {
                443
            });
        if let Err(message) = self.check_host(host, port, hosts).await {
            errors.push(FieldError::new(field, message));
        }
    }
}

/// One DAV side: its URL (`default` when none is given), login and password; `None`
/// with every error of its fields added.
fn dav_side(
    side: &'static str,
    input: &ServerInput,
    default: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Option<(Endpoint, SecretString)> {
    let [url_field, username_field, password_field] = match side {
        "source" => ["source.dav_url", "source.username", "source.password"],
        _ => [
            "destination.dav_url",
            "destination.username",
            "destination.password",
        ],
    };
    let before = errors.len();
    if !input.host.trim().is_empty() || input.port.is_some() || input.security.is_some() {
        errors.push(FieldError::new(
            url_field,
            "contacts and calendars move between CardDAV/CalDAV servers: give dav_url (a URL or just the host) instead of host, port and security",
        ));
    }
    if side == "destination" && input.upload_id.is_some() {
        errors.push(FieldError::new(
            "destination.upload_id",
            "a file can only be a source",
        ));
    }
    let url = match input
        .dav_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        Some(given) => crate::domain::dav_url(url_field, given)
            .map_err(|e| errors.push(e))
            .ok(),
        None => match default {
            Some(d) => Some(d.to_owned()),
            None => {
                let hint = if side == "source" {
                    "the CardDAV/CalDAV server's address is required (a URL or just its host), or an upload_id for a file"
                } else {
                    "the CardDAV/CalDAV server's address is required: this Ferry has no provider.dav_url setting to default to"
                };
                errors.push(FieldError::new(url_field, hint));
                None
            }
        },
    };
    let username = input.username.trim().to_owned();
    if username.is_empty() {
        errors.push(FieldError::new(
            username_field,
            "the username (usually the email address) is required",
        ));
    }
    let password = input
        .password
        .clone()
        .filter(|p| !p.expose_secret().is_empty());
    if password.is_none() {
        errors.push(FieldError::new(password_field, "the password is required"));
    }
    if errors.len() > before {
        return None;
    }
    Some((
        Endpoint::Dav(DavAccount {
            url: url?,
            username,
        }),
        password?,
    ))
}
