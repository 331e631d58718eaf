//! Copies contacts or calendars: from a CardDAV/CalDAV account's collections, or from
//! an uploaded `.vcf`/`.ics` file, into collections of the destination account (made
//! when missing, named as the source's, or "Imported — <file>" for a file), item by
//! item under the migration's policy (skip, overwrite, create, merge).
//!
//! The same guarantees as mail, through the same checkpoint interface and report
//! shape: a collection is a "folder" whose ledger maps a number Ferry gives each source
//! item (kept with the item's key: its href, or `#<place>` in a file) to what became
//! of it. Before a batch is written its keys are saved as in flight; after a crash, an
//! in-flight item found at the destination is that batch's copy and is claimed rather
//! than counted as the destination's own. Items are written under their UID's name
//! with `If-None-Match: *`, so a run killed at any instruction never doubles one.
//!
//! Each collection proves itself: the source's items, listed again at the end, must
//! each be in the ledger or failed with a reason.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::checkpoint::{CheckpointStore, Entry, FolderState, save};
use super::mail::{
    Failure, FolderReport, MigrateError, Outcome, Progress, Report, Side, folder_report,
};
use crate::connectors::cards::{self, Item};
use crate::connectors::dav::{self, DavConnection, Holds, PutError};
use crate::connectors::imap::ConnectError;
use crate::connectors::net::Reach;
use crate::domain::{DavEndpoint, ItemPolicy, MigrationKind};
use crate::planner::contacts::People;
use crate::planner::folders::{FolderPlan, MappedBy};

/// Items fetched and written per batch (one multiget, one checkpoint).
const BATCH_ITEMS: usize = 50;

/// How many of a collection's unaccounted items a report names.
const UNACCOUNTED_NAMED: usize = 20;

/// Where the items come from.
pub enum ItemsSource {
    Dav(DavEndpoint),
    /// An uploaded file's name and text.
    File {
        name: String,
        text: String,
    },
}

pub struct ItemsJob {
    pub kind: MigrationKind,
    pub source: ItemsSource,
    pub dest: DavEndpoint,
    pub policy: ItemPolicy,
    pub delete_source: bool,
    pub pass: u32,
    /// Makes the `create` policy's UIDs this migration's own (the same source item
    /// gets the same new UID in every run of the migration, none other's).
    pub migration: String,
    pub reach: Reach,
    /// The time a batch in flight is stamped with.
    pub clock: crate::clock::SharedClock,
}

impl ItemsJob {
    fn holds(&self) -> Holds {
        match self.kind {
            MigrationKind::Contacts => Holds::AddressBooks,
            _ => Holds::Calendars,
        }
    }

    fn contacts(&self) -> bool {
        self.holds() == Holds::AddressBooks
    }
}

/// Logs in on each DAV side (a file has no login): what validation checks.
pub async fn check_logins(job: &ItemsJob) -> Result<(), (Side, ConnectError)> {
    if let ItemsSource::Dav(source) = &job.source {
        dav::connect(source, job.holds(), &job.reach)
            .await
            .map_err(|e| (Side::Source, e))?;
    }
    dav::connect(&job.dest, job.holds(), &job.reach)
        .await
        .map_err(|e| (Side::Destination, e))?;
    Ok(())
}

/// One source collection: its items, fetched on demand.
struct SourceCollection {
    /// The key of its state: the collection's href, or `file:<name>`.
    id: String,
    label: String,
    dest_slug: String,
    dest_name: String,
}

/// A source item as listed: its key and, for a DAV item, its ETag.
#[derive(Clone)]
struct Listed {
    key: String,
    etag: Option<String>,
}

/// The destination's items of a collection, by UID; for the merge policy, their cards
/// indexed by person (each with its UID).
#[derive(Default)]
struct DestIndex {
    by_uid: HashMap<String, DestItem>,
    people: People,
    people_uids: Vec<String>,
}

impl DestIndex {
    /// Indexes the cards by person (the merge policy asks).
    fn index_people(&mut self) {
        let mut uids: Vec<&String> = self.by_uid.keys().collect();
        uids.sort();
        for uid in uids {
            if let Some(card) = cards::vcard(&self.by_uid[uid].data) {
                self.people.push(card);
                self.people_uids.push(uid.clone());
            }
        }
    }
}

#[derive(Clone)]
struct DestItem {
    href: String,
    etag: Option<String>,
    data: String,
}

pub async fn run<C: CheckpointStore>(
    job: &ItemsJob,
    checkpoints: &C,
    progress: &dyn Progress,
) -> Result<Report, MigrateError> {
    let started = std::time::Instant::now();
    let holds = job.holds();
    let dest = dav::connect(&job.dest, holds, &job.reach)
        .await
        .map_err(|e| MigrateError::Connect(Side::Destination, e))?;
    let (source, file) = match &job.source {
        ItemsSource::Dav(endpoint) => (
            Some(
                dav::connect(endpoint, holds, &job.reach)
                    .await
                    .map_err(|e| MigrateError::Connect(Side::Source, e))?,
            ),
            None,
        ),
        ItemsSource::File { name, text } => {
            let read = if job.contacts() {
                cards::read_vcards(text)
            } else {
                cards::read_icalendar(text)
            };
            (None, Some((name.clone(), read)))
        }
    };
    let collections = match (&source, &file) {
        // Listed, not counted: each collection's items are listed once, when it is copied.
        (Some(src), _) => src
            .found_collections(&job.reach)
            .await
            .map_err(|e| MigrateError::Connect(Side::Source, e))?
            .into_iter()
            .map(|(href, name)| {
                let label = dav::Collection {
                    href: href.clone(),
                    name,
                    items: 0,
                }
                .label();
                SourceCollection {
                    label: label.clone(),
                    dest_slug: last_segment(&href),
                    dest_name: label,
                    id: href,
                }
            })
            .collect::<Vec<_>>(),
        (None, Some((name, _))) => vec![SourceCollection {
            id: format!("file:{name}"),
            label: name.clone(),
            dest_slug: format!("imported-{}", slug(name)),
            dest_name: format!("Imported — {name}"),
        }],
        (None, None) => Vec::new(),
    };
    let mut state = checkpoints.load().await?;
    let mut report = Report {
        source: match &job.source {
            ItemsSource::Dav(e) => format!("{} on {}", e.username, e.url),
            ItemsSource::File { name, .. } => format!("the file {name}"),
        },
        dest: format!("{} on {}", job.dest.username, job.dest.url),
        ..Default::default()
    };
    // Every destination collection first: the plan the bars show.
    let mut plans = Vec::new();
    for c in &collections {
        let href = dest
            .create_collection(&c.dest_slug, &c.dest_name, &job.reach)
            .await
            .map_err(|e| MigrateError::Connect(Side::Destination, e))?;
        plans.push(FolderPlan {
            source: c.id.clone(),
            source_path: c.label.clone(),
            dest: href,
            dest_path: c.dest_name.clone(),
            special_use: None,
            mapped_by: MappedBy::Name,
            copy_messages: true,
            create: false,
            subscribe: false,
        });
    }
    progress.planned(&plans.iter().map(|p| (p, None)).collect::<Vec<_>>());
    for (c, plan) in collections.iter().zip(&plans) {
        let fs = state
            .folders
            .remove(&c.id)
            .unwrap_or_else(|| FolderState::restart(1, &plan.dest));
        let folder = copy_collection(
            job,
            checkpoints,
            progress,
            source.as_ref(),
            file.as_ref().map(|(_, read)| read),
            &dest,
            plan,
            fs,
        )
        .await?;
        progress.folder_done(&folder);
        report.totals.add(&folder);
        report.folders.push(folder);
    }
    report.created_folders = plans.iter().map(|p| p.dest_path.clone()).collect();
    report.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(report)
}

/// What one run does with one collection.
struct Run<'a> {
    job: &'a ItemsJob,
    dest: &'a DavConnection,
    plan: &'a FolderPlan,
    index: DestIndex,
    /// Keys in flight when the last run stopped: found at the destination, they are
    /// that run's copies.
    claimable: HashSet<String>,
    report: FolderReport,
}

#[allow(clippy::too_many_arguments)]
async fn copy_collection<C: CheckpointStore>(
    job: &ItemsJob,
    checkpoints: &C,
    progress: &dyn Progress,
    source: Option<&DavConnection>,
    file: Option<&cards::Read>,
    dest: &DavConnection,
    plan: &FolderPlan,
    mut fs: FolderState,
) -> Result<FolderReport, MigrateError> {
    let reach = &job.reach;
    let listed = list_source(source, file, &plan.source, reach).await?;
    // Each key keeps the number it was first given.
    let mut numbers: HashMap<String, u32> = fs
        .ledger()
        .iter()
        .map(|(n, e)| (e.key.clone(), *n))
        .chain(fs.in_flight.iter().map(|(n, k)| (k.clone(), *n)))
        .collect();
    let mut next = numbers.values().copied().max().unwrap_or(0) + 1;
    for l in &listed {
        if !numbers.contains_key(&l.key) {
            numbers.insert(l.key.clone(), next);
            next += 1;
        }
    }
    // An item copied before is done, unless it changed at the source since (its ETag)
    // and the policy replaces what is at the destination: then it is copied again.
    let (pending, updated) = {
        let versions: HashMap<&str, Option<&str>> = fs
            .ledger()
            .values()
            .map(|e| (e.key.as_str(), e.version.as_deref()))
            .collect();
        let recopies = job.policy != ItemPolicy::Skip;
        let changed = |l: &Listed| match (versions.get(l.key.as_str()), l.etag.as_deref()) {
            (Some(Some(was)), Some(now)) => recopies && *was != now,
            _ => false,
        };
        let pending: Vec<Listed> = listed
            .iter()
            .filter(|l| !versions.contains_key(l.key.as_str()) || changed(l))
            .cloned()
            .collect();
        let updated: HashSet<String> = pending
            .iter()
            .filter(|l| versions.contains_key(l.key.as_str()))
            .map(|l| l.key.clone())
            .collect();
        (pending, updated)
    };
    let mut index = dest_index(dest, &plan.dest, job.contacts(), reach).await?;
    if job.policy == ItemPolicy::Merge {
        index.index_people();
    }
    let mut run = Run {
        job,
        dest,
        plan,
        index,
        claimable: fs.in_flight.values().cloned().collect(),
        report: folder_report(plan),
    };
    run.report.already_done = (listed.len() - pending.len()) as u64;
    run.report.expected = pending.len() as u64;
    progress.folder_started(&plan.source_path, pending.len() as u64);
    for batch in pending.chunks(BATCH_ITEMS) {
        let items = fetch_items(source, file, &plan.source, batch, job.contacts(), reach).await?;
        fs.in_flight = batch
            .iter()
            .map(|l| (numbers[&l.key], l.key.clone()))
            .collect();
        fs.in_flight_at = job.clock.now().timestamp();
        save(checkpoints, &plan.source, &mut fs).await?;
        for (listed, item) in batch.iter().zip(items) {
            let number = numbers[&listed.key];
            let outcome = match item {
                Ok(item) => {
                    run.write(&listed.key, &item, updated.contains(&listed.key))
                        .await?
                }
                Err(reason) => Err(reason),
            };
            match outcome {
                Ok(skipped) => {
                    fs.failed.remove(&number);
                    fs.record(
                        number,
                        Entry {
                            key: listed.key.clone(),
                            dest_uid: None,
                            skipped,
                            source_deleted: false,
                            pass: job.pass,
                            removed: false,
                            version: listed.etag.clone(),
                        },
                    );
                    if skipped {
                        run.report.skipped += 1;
                        progress.message(&plan.source_path, 0, Outcome::Skipped);
                    } else {
                        run.report.copied += 1;
                        progress.message(&plan.source_path, 0, Outcome::Copied);
                    }
                }
                Err(reason) => {
                    run.report.failed += 1;
                    run.report.failures.push(Failure {
                        uid: number,
                        item: Some(describe(&listed.key)),
                        reason: reason.clone(),
                    });
                    fs.failed.insert(number, reason);
                    progress.message(&plan.source_path, 0, Outcome::Failed);
                }
            }
        }
        fs.in_flight.clear();
        save(checkpoints, &plan.source, &mut fs).await?;
    }
    // The proof: what the source has now and had at the start is accounted for.
    let at_end = list_source(source, file, &plan.source, reach).await?;
    let at_start: HashSet<&str> = listed.iter().map(|l| l.key.as_str()).collect();
    let ledger_keys: HashSet<&str> = fs.ledger().values().map(|e| e.key.as_str()).collect();
    let mut unaccounted = Vec::new();
    let mut source_items = 0u64;
    for l in at_end.iter().filter(|l| at_start.contains(l.key.as_str())) {
        source_items += 1;
        let n = numbers.get(&l.key).copied().unwrap_or(0);
        if !ledger_keys.contains(l.key.as_str()) && !fs.failed.contains_key(&n) {
            unaccounted.push(n);
        }
    }
    let mut report = run.report;
    report.source_messages = source_items;
    report.unaccounted = unaccounted.len() as u64;
    unaccounted.truncate(UNACCOUNTED_NAMED);
    report.unaccounted_uids = unaccounted;
    report.dest_messages = Some(
        dest.items(&plan.dest, reach)
            .await
            .map_err(|e| MigrateError::Connect(Side::Destination, e))?
            .len() as u64,
    );
    if report.unaccounted == 0 {
        fs.source_messages = u32::try_from(source_items).unwrap_or(u32::MAX);
    }
    if job.delete_source
        && report.unaccounted == 0
        && let Some(src) = source
    {
        report.removed = delete_copied(src, &mut fs, &at_end, reach).await?;
    }
    save(checkpoints, &plan.source, &mut fs).await?;
    Ok(report)
}

impl Run<'_> {
    /// Writes one item under the policy: `Ok(true)` when it was skipped, `Ok(false)`
    /// when written, `Err(reason)` when the destination refused it. `updated`: the
    /// item was copied by an earlier pass and changed at the source since, so its copy
    /// is replaced (under `create` too, where the copy has its own UID).
    async fn write(
        &mut self,
        key: &str,
        item: &Item,
        updated: bool,
    ) -> Result<Result<bool, String>, MigrateError> {
        let claimed = self.claimable.contains(key);
        let (uid, data) = match self.job.policy {
            ItemPolicy::Create => {
                let uid =
                    cards::derived_uid(&format!("{}\n{key}\n{}", self.job.migration, item.uid));
                match cards::with_uid(&item.data, &uid) {
                    Some(data) => (uid, data),
                    None => return Ok(Err("the item cannot be read to give it a new UID".into())),
                }
            }
            _ => (item.uid.clone(), item.data.clone()),
        };
        let source_card = (self.job.policy == ItemPolicy::Merge)
            .then(|| cards::vcard(&data))
            .flatten();
        if let Some(source_card) = &source_card
            && let Some((i, _)) = self.index.people.find(source_card)
            && let Some(dest_card) = self.index.people.card(i).cloned()
        {
            let dest_uid = self.index.people_uids[i].clone();
            let merged = crate::planner::contacts::merge(&dest_card, source_card);
            let Some(existing) = self.index.by_uid.get(&dest_uid).cloned() else {
                return Ok(Err("the destination's card went away".into()));
            };
            if merged.to_string() == dest_card.to_string() && !claimed {
                // Nothing of the source's is missing there.
                return Ok(Ok(true));
            }
            let written = self
                .replace(&dest_uid, &existing, &merged.to_string())
                .await?;
            if written.is_ok() {
                self.index.people.replace(i, merged);
            }
            return Ok(written.map(|()| false));
        }
        if let Some(existing) = self.index.by_uid.get(&uid).cloned() {
            // `updated` is never true under `skip`.
            if updated || self.job.policy == ItemPolicy::Overwrite {
                return self
                    .replace(&uid, &existing, &data)
                    .await
                    .map(|r| r.map(|()| false));
            }
            // A copy this migration made before it stopped, or the destination's own
            // (left as it is).
            return Ok(Ok(!claimed && self.job.policy != ItemPolicy::Create));
        }
        let href = format!(
            "{}{}",
            self.plan.dest,
            dav::item_name(&uid, self.job.holds())
        );
        match self.dest.put_new(&href, &data, &self.job.reach).await {
            Ok(etag) => {
                if let Some(card) = source_card {
                    // A later card of the same person merges into this one.
                    self.index.people.push(card);
                    self.index.people_uids.push(uid.clone());
                }
                self.index.by_uid.insert(uid, DestItem { href, etag, data });
                Ok(Ok(false))
            }
            // Under that name already, with another UID than the index knew.
            Err(PutError::Exists) => Ok(Ok(!claimed)),
            Err(PutError::Refused(why)) => Ok(Err(why)),
            Err(PutError::Connection(e)) => Err(MigrateError::Connect(Side::Destination, e)),
        }
    }

    /// Replaces the destination's item with `data` if it did not change meanwhile.
    async fn replace(
        &mut self,
        uid: &str,
        existing: &DestItem,
        data: &str,
    ) -> Result<Result<(), String>, MigrateError> {
        let Some(etag) = existing.etag.as_deref() else {
            return Ok(Err(
                "the destination gives no ETag for its item, so it is not replaced".into(),
            ));
        };
        match self
            .dest
            .put_over(&existing.href, data, etag, &self.job.reach)
            .await
        {
            Ok(new_etag) => {
                self.index.by_uid.insert(
                    uid.to_owned(),
                    DestItem {
                        href: existing.href.clone(),
                        etag: new_etag,
                        data: data.to_owned(),
                    },
                );
                Ok(Ok(()))
            }
            Err(PutError::Exists) => Ok(Err(
                "the destination's item changed while it was being replaced; run the pass again"
                    .into(),
            )),
            Err(PutError::Refused(why)) => Ok(Err(why)),
            Err(PutError::Connection(e)) => Err(MigrateError::Connect(Side::Destination, e)),
        }
    }
}

/// The source collection's items: a DAV collection's hrefs and ETags, or a file's
/// places (its readable items and its unreadable ones alike).
async fn list_source(
    source: Option<&DavConnection>,
    file: Option<&cards::Read>,
    collection: &str,
    reach: &Reach,
) -> Result<Vec<Listed>, MigrateError> {
    if let Some(src) = source {
        return Ok(src
            .items(collection, reach)
            .await
            .map_err(|e| MigrateError::Connect(Side::Source, e))?
            .into_iter()
            .map(|i| Listed {
                key: i.href,
                etag: i.etag,
            })
            .collect());
    }
    let Some(read) = file else {
        return Ok(Vec::new());
    };
    Ok((0..read.items.len())
        .map(|i| format!("#item{}", i + 1))
        .chain(read.bad.iter().map(|b| format!("#bad{}", b.position)))
        .map(|key| Listed { key, etag: None })
        .collect())
}

/// The items of `batch`, each readable or with the reason it is not.
async fn fetch_items(
    source: Option<&DavConnection>,
    file: Option<&cards::Read>,
    collection: &str,
    batch: &[Listed],
    contacts: bool,
    reach: &Reach,
) -> Result<Vec<Result<Item, String>>, MigrateError> {
    if let Some(src) = source {
        let hrefs: Vec<String> = batch.iter().map(|l| l.key.clone()).collect();
        let fetched = src
            .fetch(collection, &hrefs, reach)
            .await
            .map_err(|e| MigrateError::Connect(Side::Source, e))?;
        let mut by_href: HashMap<String, Result<(String, String), String>> =
            fetched.into_iter().map(|f| (f.href, f.content)).collect();
        return Ok(hrefs
            .iter()
            .map(|h| match by_href.remove(h) {
                Some(Ok((data, _))) => cards::read_item(&data, contacts),
                Some(Err(why)) => Err(why),
                None => Err("the server did not give it (deleted meanwhile?)".into()),
            })
            .collect());
    }
    let Some(read) = file else {
        return Ok(Vec::new());
    };
    Ok(batch
        .iter()
        .map(|l| {
            if let Some(n) = l
                .key
                .strip_prefix("#item")
                .and_then(|n| n.parse::<usize>().ok())
            {
                read.items
                    .get(n - 1)
                    .cloned()
                    .ok_or_else(|| "not in the file".to_owned())
            } else {
                let position = l
                    .key
                    .strip_prefix("#bad")
                    .and_then(|n| n.parse::<usize>().ok());
                Err(read
                    .bad
                    .iter()
                    .find(|b| Some(b.position) == position)
                    .map_or_else(|| "unreadable".to_owned(), |b| b.reason.clone()))
            }
        })
        .collect())
}

/// The destination collection's items by UID (read whole: the merge rule compares
/// cards, and every policy asks whether a UID is there).
async fn dest_index(
    dest: &DavConnection,
    collection: &str,
    contacts: bool,
    reach: &Reach,
) -> Result<DestIndex, MigrateError> {
    let refs = dest
        .items(collection, reach)
        .await
        .map_err(|e| MigrateError::Connect(Side::Destination, e))?;
    let mut index = DestIndex::default();
    for batch in refs.chunks(200) {
        let hrefs: Vec<String> = batch.iter().map(|r| r.href.clone()).collect();
        let fetched = dest
            .fetch(collection, &hrefs, reach)
            .await
            .map_err(|e| MigrateError::Connect(Side::Destination, e))?;
        for f in fetched {
            let Ok((data, etag)) = f.content else {
                continue;
            };
            let Ok(item) = cards::read_item(&data, contacts) else {
                continue;
            };
            index.by_uid.insert(
                item.uid,
                DestItem {
                    href: f.href,
                    etag: Some(etag).filter(|e| !e.is_empty()),
                    data,
                },
            );
        }
    }
    Ok(index)
}

/// Deletes at the source the items this collection's ledger holds (copied or
/// skipped, not yet deleted), each only if its ETag is the one listed at the end of
/// the pass: an item changed since stays.
async fn delete_copied(
    src: &DavConnection,
    fs: &mut FolderState,
    at_end: &[Listed],
    reach: &Reach,
) -> Result<u64, MigrateError> {
    let etags: BTreeMap<&str, &str> = at_end
        .iter()
        .filter_map(|l| l.etag.as_deref().map(|e| (l.key.as_str(), e)))
        .collect();
    let todo: Vec<(u32, String)> = fs
        .ledger()
        .iter()
        .filter(|(_, e)| !e.source_deleted)
        .map(|(n, e)| (*n, e.key.clone()))
        .collect();
    let mut removed = 0;
    for (n, key) in todo {
        let Some(etag) = etags.get(key.as_str()) else {
            continue;
        };
        if src
            .delete(&key, etag, reach)
            .await
            .map_err(|e| MigrateError::Connect(Side::Source, e))?
        {
            removed += 1;
            fs.update(n, |e| e.source_deleted = true);
        }
    }
    Ok(removed)
}

/// An item's key for people: its file name on the server, or its place in a file.
fn describe(key: &str) -> String {
    if let Some(n) = key.strip_prefix("#item") {
        format!("item {n} of the file")
    } else if let Some(n) = key.strip_prefix("#bad") {
        format!("entry {n} of the file")
    } else {
        key.rsplit('/').next().unwrap_or(key).to_owned()
    }
}

/// The last segment of a collection's href: the destination collection's name.
fn last_segment(href: &str) -> String {
    let s = slug(
        href.trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default(),
    );
    if s.is_empty() { "imported".into() } else { s }
}

/// Letters, digits, `-` and `_` of `text`, lower case, at most 60.
fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').chars().take(60).collect()
}
