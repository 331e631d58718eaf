//! One folder copied end to end: select both sides, list and decide, copy in batches,
//! bring flag changes and deletions over, and prove the folder adds up; reconnecting
//! with backoff when a connection breaks.

use super::*;

/// Copies one folder, reconnecting with backoff when a connection breaks; the
/// checkpoint carries the work from one attempt to the next. Its log lines carry the
/// folder (and, under a worker, the migration and pass of the span around it).
#[tracing::instrument(name = "folder", skip_all, fields(folder = %cx.plan.source_path))]
pub(super) async fn copy_folder_with_retries<C: CheckpointStore>(
    mut sides: Sides,
    cx: Cx<'_, C>,
    mut fs: FolderState,
    status: FolderStatus,
) -> Result<(Sides, FolderReport), MigrateError> {
    let Cx { job, plan, .. } = cx;
    let mut report = folder_report(plan);
    report.already_done = fs.ledger().len() as u64;
    // Messages whose size did not match their bytes: copied whole, not streamed.
    let mut whole = HashSet::new();
    let mut attempt = 0;
    loop {
        let copied = copy_folder(&mut sides, cx, &mut fs, &mut report, &mut whole, status).await;
        let mut why = match copied {
            Ok(()) => break,
            Err(FolderError::Other(err)) => return Err(MigrateError::Other(err)),
            Err(FolderError::Connection(why)) => why,
        };
        // A broken connection is closed now and never used again: a command cut short
        // may still be answered on it, or still be arriving at the server.
        drop(sides);
        sides = loop {
            if attempt >= MAX_RECONNECTS {
                return Err(MigrateError::Other(anyhow::anyhow!(
                    "Gave up on {} after {MAX_RECONNECTS} reconnections: {why}",
                    plan.source_path
                )));
            }
            attempt += 1;
            let backoff = FIRST_BACKOFF
                .saturating_mul(1 << (attempt - 1))
                .min(MAX_BACKOFF);
            tracing::warn!(folder = %plan.source_path, attempt, error = %why, backoff_s = backoff.as_secs(), "Connection lost; reconnecting");
            // A deliberate pause is a sign of life too.
            job.reach.alive_for(backoff + job.reach.connect_timeout);
            tokio::time::sleep(backoff).await;
            match connect(job).await {
                Ok(new) => break new,
                // A refused login or target does not get better by waiting.
                Err(
                    err @ MigrateError::Connect(
                        _,
                        ConnectError::Auth(..) | ConnectError::Target(..),
                    ),
                ) => {
                    return Err(err);
                }
                Err(err) => why = err.to_string(),
            }
        };
    }
    report.failed = report.failures.len() as u64;
    report.expected = report.copied + report.skipped + report.failed;
    tracing::info!(
        copied = report.copied,
        skipped = report.skipped,
        failed = report.failed,
        flags_updated = report.flags_updated,
        removed = report.removed,
        "Folder done"
    );
    Ok((sides, report))
}

pub(super) enum FolderError {
    Connection(String),
    Other(anyhow::Error),
}

impl From<OpError> for FolderError {
    fn from(err: OpError) -> Self {
        match err {
            OpError::Connection(why) => FolderError::Connection(why),
            OpError::Refused(why) => FolderError::Other(anyhow::anyhow!("{why}")),
        }
    }
}

impl From<anyhow::Error> for FolderError {
    fn from(err: anyhow::Error) -> Self {
        FolderError::Other(err)
    }
}

pub(super) async fn copy_folder<C: CheckpointStore>(
    sides: &mut Sides,
    cx: Cx<'_, C>,
    fs: &mut FolderState,
    report: &mut FolderReport,
    whole: &mut HashSet<u32>,
    before: FolderStatus,
) -> Result<(), FolderError> {
    let status = select_source(sides, cx.plan, fs).await?;
    // Every source message the ledger does not hold is pending, whatever UIDNEXT or an
    // earlier run said: failures, what was in flight, what is new. The listing is the
    // count the pass is proven against at the end.
    let listed = sides.src.list_uids(status.exists).await?;
    // Copies made by earlier runs, whose flags may have changed at the source since.
    let earlier: Vec<u32> = fs
        .ledger()
        .iter()
        .filter(|(_, e)| !e.skipped && !e.removed)
        .map(|(uid, _)| *uid)
        .collect();
    let pending = pending_messages(sides, cx.job, fs, report, &listed).await?;
    cx.progress
        .folder_started(&cx.plan.source_path, pending.len() as u64);
    select_dest(sides, cx.plan, fs, !pending.is_empty()).await?;
    copy_pending(sides, cx, fs, report, whole, pending).await?;
    fs.last_uid = fs.last_uid.max(listed.last().copied().unwrap_or(0));

    if cx.job.delete_source {
        // Copies confirmed by an earlier run, and messages the destination already had.
        let left: Vec<u32> = fs
            .ledger()
            .iter()
            .filter(|(_, e)| e.dest_uid.is_some() && !e.source_deleted)
            .map(|(uid, _)| *uid)
            .collect();
        delete_from_source(sides, fs, &left).await?;
    }
    // Flags changed at the source since the copies were made: brought over.
    report.flags_updated += sync_flags(sides, fs, &earlier, &listed, before).await?;
    prove(sides, cx, fs, report, &listed, before).await
}

/// Selects the source folder; a new UIDVALIDITY (or another destination) starts the
/// folder's state over, its earlier copies still claimed by their keys.
async fn select_source(
    sides: &mut Sides,
    plan: &FolderPlan,
    fs: &mut FolderState,
) -> Result<FolderStatus, FolderError> {
    let status = sides
        .src
        .select(&plan.source)
        .await
        .map_err(|e| folder_select_error(e, &plan.source_path))?;
    if fs.uidvalidity != status.uidvalidity || fs.dest != plan.dest {
        if fs.uidvalidity != 0 {
            tracing::warn!(folder = %plan.source_path, "UIDVALIDITY changed; matching by message key");
        }
        // Source UIDs are meaningless now: the ledger's keys still count the copies made.
        let previous_keys: Vec<String> = fs.ledger().values().map(|e| e.key.clone()).collect();
        *fs = FolderState::restart(status.uidvalidity, &plan.dest);
        // Counted as ours: their copies at the destination are claimed, not doubled.
        for (i, key) in previous_keys.into_iter().enumerate() {
            fs.in_flight
                .insert(u32::MAX - u32::try_from(i).unwrap_or(u32::MAX), key);
        }
    }
    Ok(status)
}

/// The listed messages the ledger does not hold, with their metadata; those older
/// than `since` are recorded as skipped.
async fn pending_messages(
    sides: &mut Sides,
    job: &MailJob,
    fs: &mut FolderState,
    report: &mut FolderReport,
    listed: &[u32],
) -> Result<Vec<MessageMeta>, FolderError> {
    let wanted: Vec<u32> = listed
        .iter()
        .copied()
        .filter(|uid| !fs.ledger().contains_key(uid))
        .collect();
    let mut pending = if wanted.is_empty() {
        Vec::new()
    } else {
        sides.src.fetch_meta(&wanted).await?
    };
    pending.retain(|m| !fs.ledger().contains_key(&m.uid));
    if let Some(since) = job.since {
        let (keep, old): (Vec<_>, Vec<_>) = pending.into_iter().partition(|m| {
            m.internal_date
                .is_none_or(|d| d.with_timezone(&chrono::Utc).date_naive() >= since)
        });
        report.skipped += old.len() as u64;
        for m in &old {
            fs.record(m.uid, entry(job, &m.key, None, true));
            fs.failed.remove(&m.uid);
            report.failures.retain(|f| f.uid != m.uid);
        }
        pending = keep;
    }
    Ok(pending)
}

/// Selects the destination folder (a new UIDVALIDITY forgets the copies' destination
/// UIDs) and, when something is to be copied, indexes what it holds.
async fn select_dest(
    sides: &mut Sides,
    plan: &FolderPlan,
    fs: &mut FolderState,
    index: bool,
) -> Result<(), FolderError> {
    let dstatus = sides
        .dst
        .select(&plan.dest)
        .await
        .map_err(|e| folder_select_error(e, &plan.dest_path))?;
    if fs.dest_uidvalidity != dstatus.uidvalidity {
        fs.dest_uidvalidity = dstatus.uidvalidity;
        fs.dest_seen_uid = 0;
        fs.dest_unclaimed.clear();
        fs.update_all(|entry| entry.dest_uid.take().is_some());
    }
    if index {
        index_dest(&mut sides.dst, fs, dstatus.uidnext).await?;
    }
    Ok(())
}

/// Copies what is pending. The batch in flight when the last run ended may have
/// reached the destination, or may still be on its way: the server can finish a
/// command whose client has died, seconds later. What is not there yet waits until the
/// rest is copied and IN_FLIGHT_GRACE has passed since it was sent, then is looked for
/// once more.
async fn copy_pending<C: CheckpointStore>(
    sides: &mut Sides,
    cx: Cx<'_, C>,
    fs: &mut FolderState,
    report: &mut FolderReport,
    whole: &mut HashSet<u32>,
    mut pending: Vec<MessageMeta>,
) -> Result<(), FolderError> {
    let Cx {
        job,
        plan,
        progress,
        ..
    } = cx;
    let sent_at = fs.in_flight_at;
    let mut in_flight: HashSet<String> = fs.in_flight.values().cloned().collect();
    for last_look in [false, true] {
        if last_look {
            if pending.is_empty() {
                break;
            }
            let due = sent_at.saturating_add(IN_FLIGHT_GRACE.as_secs() as i64);
            let wait = due.saturating_sub(job.clock.now().timestamp());
            if wait > 0 {
                let wait = Duration::from_secs(wait.unsigned_abs()).min(IN_FLIGHT_GRACE);
                tracing::info!(folder = %plan.source_path, messages = pending.len(), wait_s = wait.as_secs(), "Waiting for the batch in flight at the crash to arrive");
                tokio::time::sleep(wait).await;
            }
            settle(&mut sides.dst, &plan.dest).await?;
            let dstatus = sides
                .dst
                .select(&plan.dest)
                .await
                .map_err(|e| folder_select_error(e, &plan.dest_path))?;
            if dstatus.uidvalidity != fs.dest_uidvalidity {
                return Err(FolderError::Other(anyhow::anyhow!(
                    "the destination folder {} was recreated during the copy",
                    plan.dest_path
                )));
            }
            index_dest(&mut sides.dst, fs, dstatus.uidnext).await?;
        }
        let (copies, later, to_replace) = decide_and_record(
            job, plan, fs, report, progress, &pending, &in_flight, last_look,
        );
        if !to_replace.is_empty() {
            sides.dst.delete_uids(&to_replace).await?;
        }
        // Until found or copied again, they stay in flight in every checkpoint.
        fs.in_flight = later.iter().map(|m| (m.uid, m.key.clone())).collect();
        copy_batches(sides, cx, fs, report, whole, &copies).await?;
        in_flight = later.iter().map(|m| m.key.clone()).collect();
        let next: Vec<MessageMeta> = later.into_iter().cloned().collect();
        pending = next;
    }
    Ok(())
}

/// The proof: the source counted again, apart from the copy loop (the folder is still
/// selected: SEARCH answers what it holds now), every message accounted for or named;
/// then the folder's checkpoint.
async fn prove<C: CheckpointStore>(
    sides: &mut Sides,
    cx: Cx<'_, C>,
    fs: &mut FolderState,
    report: &mut FolderReport,
    listed: &[u32],
    before: FolderStatus,
) -> Result<(), FolderError> {
    let plan = cx.plan;
    let now_listed = sides.src.search_uids().await?;
    if cx.job.sync_deletions {
        report.removed += sync_deletions(sides, fs, &now_listed).await?;
    }
    let proof = reconcile(fs, listed, &now_listed);
    report.source_messages = proof.source_messages;
    report.unaccounted = proof.unaccounted.len() as u64;
    report.unaccounted_uids = proof
        .unaccounted
        .into_iter()
        .take(UNACCOUNTED_NAMED)
        .collect();
    // A server that will not answer STATUS on the selected folder leaves it unknown.
    report.dest_messages = sides
        .dst
        .status(&plan.dest)
        .await
        .ok()
        .map(|s| u64::from(s.exists));
    if report.unaccounted == 0 {
        fs.source_uidnext = before.uidnext.unwrap_or(0);
        fs.source_messages = u32::try_from(now_listed.len()).unwrap_or(u32::MAX);
        fs.source_modseq = before.highest_modseq.unwrap_or(0);
    } else {
        tracing::error!(folder = %plan.source_path, source_messages = report.source_messages, unaccounted = report.unaccounted, "The folder does not add up");
        fs.source_uidnext = 0;
    }
    save(cx.checkpoints, &plan.source, fs).await?;
    Ok(())
}

/// A ledger entry made by this pass.
pub(super) fn entry(job: &MailJob, key: &str, dest_uid: Option<u32>, skipped: bool) -> Entry {
    Entry {
        key: key.to_owned(),
        dest_uid,
        skipped,
        source_deleted: false,
        pass: job.pass,
        removed: false,
        version: None,
    }
}

/// Finds the destination UIDs of this migration's copies that the ledger knows by key
/// only (a destination without UIDPLUS): each key's copies, in UID order, among the
/// destination messages no ledger entry names.
pub(super) async fn locate_copies(
    dst: &mut ImapConnection,
    fs: &mut FolderState,
) -> Result<(), FolderError> {
    let named: HashSet<u32> = fs.ledger().values().filter_map(|e| e.dest_uid).collect();
    let mut by_key: BTreeMap<String, VecDeque<u32>> = BTreeMap::new();
    for m in dst.fetch_meta_set("1:*").await? {
        if !named.contains(&m.uid) {
            by_key.entry(m.key).or_default().push_back(m.uid);
        }
    }
    fs.update_all(|e| {
        if e.dest_uid.is_some() || e.skipped || e.removed {
            return false;
        }
        e.dest_uid = by_key.get_mut(&e.key).and_then(VecDeque::pop_front);
        e.dest_uid.is_some()
    });
    Ok(())
}

/// Indexes the destination's messages above `dest_seen_uid` by key: those neither
/// copied by this migration (its ledger) nor claimed already are `dest_unclaimed`.
/// UIDNEXT, when the server gives it, only saves the FETCH when nothing is new.
pub(super) async fn index_dest(
    dst: &mut ImapConnection,
    fs: &mut FolderState,
    uidnext: Option<u32>,
) -> Result<(), FolderError> {
    if uidnext.is_some_and(|n| n.saturating_sub(1) <= fs.dest_seen_uid) {
        return Ok(());
    }
    let claimed: HashSet<u32> = fs.ledger().values().filter_map(|e| e.dest_uid).collect();
    let mut ledger_without_uid: BTreeMap<String, usize> = BTreeMap::new();
    for e in fs
        .ledger()
        .values()
        .filter(|e| e.dest_uid.is_none() && !e.skipped)
    {
        *ledger_without_uid.entry(e.key.clone()).or_default() += 1;
    }
    // `n:*` always answers the highest message even below n: filtered by UID.
    let index = dst
        .fetch_meta_set(&format!("{}:*", fs.dest_seen_uid + 1))
        .await?;
    let seen = fs.dest_seen_uid;
    let newest = index.iter().map(|m| m.uid).max().unwrap_or(seen).max(seen);
    for m in index
        .into_iter()
        .filter(|m| m.uid > seen && !claimed.contains(&m.uid))
    {
        // Copies made without UIDPLUS are known by key only.
        if let Some(n) = ledger_without_uid
            .get_mut(m.key.as_str())
            .filter(|n| **n > 0)
        {
            *n -= 1;
            continue;
        }
        fs.dest_unclaimed.entry(m.key).or_default().push(m.uid);
    }
    fs.dest_seen_uid = newest;
    Ok(())
}

pub(super) fn folder_select_error(err: OpError, folder: &str) -> FolderError {
    match err {
        OpError::Refused(why) => {
            FolderError::Other(anyhow::anyhow!("Cannot open folder {folder:?}: {why}"))
        }
        other => other.into(),
    }
}

/// What to copy now, what to look for again later, and the destination copies to
/// replace (deleted before the copies are made).
pub(super) type Decided<'a> = (Vec<&'a MessageMeta>, Vec<&'a MessageMeta>, Vec<u32>);

/// Decides each pending message ([`decide`], pure) and records what it claims: a
/// claimed copy goes into the ledger (copied when it was ours, else skipped) and the
/// report; the rest is returned to copy now or to look for again later.
#[allow(clippy::too_many_arguments)]
pub(super) fn decide_and_record<'a>(
    job: &MailJob,
    plan: &FolderPlan,
    fs: &mut FolderState,
    report: &mut FolderReport,
    progress: &dyn Progress,
    pending: &'a [MessageMeta],
    in_flight: &HashSet<String>,
    last_look: bool,
) -> Decided<'a> {
    let (decisions, to_replace) = decide(
        pending,
        &mut fs.dest_unclaimed,
        in_flight,
        job.duplicates,
        last_look,
    );
    tracing::debug!(
        pending = pending.len(),
        in_flight = in_flight.len(),
        seen = fs.dest_seen_uid,
        unclaimed = fs.dest_unclaimed.values().map(Vec::len).sum::<usize>(),
        "Decided"
    );
    let (mut copies, mut later) = (Vec::new(), Vec::new());
    for (m, decision) in pending.iter().zip(decisions) {
        match decision {
            Decision::Claim { dest_uid, ours } => {
                fs.record(m.uid, entry(job, &m.key, Some(dest_uid), !ours));
                fs.failed.remove(&m.uid);
                report.failures.retain(|f| f.uid != m.uid);
                let outcome = if ours {
                    report.copied += 1;
                    Outcome::Copied
                } else {
                    report.skipped += 1;
                    Outcome::Skipped
                };
                progress.message(&plan.source_path, u64::from(m.size), outcome);
            }
            Decision::Copy => copies.push(m),
            Decision::Later => later.push(m),
        }
    }
    (copies, later, to_replace)
}
