//! Copying in batches: the batch planner, MULTIAPPEND (one by one when refused),
//! large messages streamed, in-flight keys saved before and the ledger after each
//! batch, and the crash point the kill tests use (only in a `failpoints` build).

use super::*;

/// Messages appended together: one MULTIAPPEND, or one large message streamed.
pub(super) struct Batch<'a> {
    messages: Vec<&'a MessageMeta>,
    stream: bool,
}

impl Batch<'_> {
    fn uids(&self) -> Vec<u32> {
        self.messages.iter().map(|m| m.uid).collect()
    }

    fn bytes(&self) -> u64 {
        self.messages.iter().map(|m| u64::from(m.size)).sum()
    }
}

pub(super) fn batches<'a>(copies: &[&'a MessageMeta], whole: &HashSet<u32>) -> Vec<Batch<'a>> {
    let mut out: Vec<Batch<'a>> = Vec::new();
    let mut current: Vec<&'a MessageMeta> = Vec::new();
    let mut bytes = 0u64;
    for &m in copies {
        let size = u64::from(m.size);
        if size > STREAM_ABOVE && !whole.contains(&m.uid) {
            out.push(Batch {
                messages: vec![m],
                stream: true,
            });
            continue;
        }
        if !current.is_empty() && (current.len() >= BATCH_MESSAGES || bytes + size > BATCH_BYTES) {
            out.push(Batch {
                messages: std::mem::take(&mut current),
                stream: false,
            });
            bytes = 0;
        }
        bytes += size;
        current.push(m);
    }
    if !current.is_empty() {
        out.push(Batch {
            messages: current,
            stream: false,
        });
    }
    out
}

/// What became of one message of a batch.
pub(super) enum Appended {
    Copied {
        dest_uid: Option<u32>,
        bytes: u64,
    },
    Refused(String),
    /// Not returned by the source (expunged since the listing, or a server that hides
    /// it): nothing copied, nothing recorded.
    Gone,
}

/// Appends a batch whose bodies are fetched: one MULTIAPPEND when the server offers
/// it (all or nothing), else, or when it refuses, one APPEND per message so that a
/// refusal is the refused message's alone. Returns the outcome of each message up to
/// the first broken connection, and that break.
pub(super) async fn append_batch(
    dst: &mut ImapConnection,
    folder: &str,
    messages: &[&MessageMeta],
    bodies: &Bodies,
) -> (Vec<Appended>, Option<OpError>) {
    let items: Vec<Option<AppendItem<'_>>> = messages
        .iter()
        .map(|m| {
            bodies.get(m.uid).map(|body| AppendItem {
                flags: &m.flags,
                internal_date: m.internal_date,
                body,
            })
        })
        .collect();
    let present: Vec<AppendItem<'_>> = items.iter().flatten().copied().collect();
    let fits = |item: &AppendItem<'_>| {
        dst.caps
            .appendlimit
            .is_none_or(|limit| item.body.len() as u64 <= limit)
    };
    if dst.caps.multiappend && present.len() > 1 && present.iter().all(fits) {
        match dst.append_many(folder, &present).await {
            Ok(uids) => {
                let mut uids = uids.into_iter();
                let known = uids.len() == present.len();
                let outcomes = items
                    .iter()
                    .map(|item| match item {
                        Some(item) => Appended::Copied {
                            dest_uid: if known { uids.next() } else { None },
                            bytes: item.body.len() as u64,
                        },
                        None => Appended::Gone,
                    })
                    .collect();
                return (outcomes, None);
            }
            Err(OpError::Refused(why)) => {
                tracing::warn!(%folder, %why, "MULTIAPPEND refused; appending one by one");
            }
            Err(err) => return (Vec::new(), Some(err)),
        }
    }
    let mut outcomes = Vec::with_capacity(items.len());
    for item in &items {
        let Some(item) = item else {
            outcomes.push(Appended::Gone);
            continue;
        };
        match dst.append(folder, item).await {
            Ok(dest_uid) => outcomes.push(Appended::Copied {
                dest_uid,
                bytes: item.body.len() as u64,
            }),
            Err(OpError::Refused(reason)) => outcomes.push(Appended::Refused(reason)),
            Err(err) => return (outcomes, Some(err)),
        }
    }
    (outcomes, None)
}

/// Copies messages in batches, in order; while one is appended the next one's bodies
/// are fetched. Each batch is saved as in flight (with what `fs.in_flight` already
/// holds) before it is appended, and in the ledger once confirmed.
pub(super) async fn copy_batches<C: CheckpointStore>(
    sides: &mut Sides,
    cx: Cx<'_, C>,
    fs: &mut FolderState,
    report: &mut FolderReport,
    whole: &mut HashSet<u32>,
    copies: &[&MessageMeta],
) -> Result<(), FolderError> {
    let Cx {
        job,
        plan,
        checkpoints,
        budget,
        ..
    } = cx;
    let unresolved = fs.in_flight.clone();
    let batches = batches(copies, whole);
    let mut prefetched: Option<(Bodies, Option<tokio::sync::SemaphorePermit<'_>>)> = None;
    for (i, batch) in batches.iter().enumerate() {
        fs.in_flight.clone_from(&unresolved);
        fs.in_flight
            .extend(batch.messages.iter().map(|m| (m.uid, m.key.clone())));
        fs.in_flight_at = job.clock.now().timestamp();
        save(checkpoints, &plan.source, fs).await?;

        let (outcomes, broken, next) = if batch.stream {
            let (outcomes, broken) = stream_one(sides, cx, whole, batch.messages[0]).await;
            (outcomes, broken, None)
        } else {
            let (bodies, _held) = match prefetched.take() {
                Some(fetched) => fetched,
                None => {
                    let held = budget.take(batch.bytes()).await;
                    (sides.src.fetch_bodies(&batch.uids()).await?, held)
                }
            };
            // The next batch is fetched meanwhile when the budget has room for it now.
            let following = batches
                .get(i + 1)
                .filter(|b| !b.stream)
                .and_then(|b| budget.try_take(b.bytes()).map(|held| (b.uids(), held)));
            let ((outcomes, broken), next) = tokio::join!(
                append_batch(&mut sides.dst, &plan.dest, &batch.messages, &bodies),
                async {
                    match following {
                        Some((uids, held)) => {
                            Some(sides.src.fetch_bodies(&uids).await.map(|b| (b, Some(held))))
                        }
                        None => None,
                    }
                }
            );
            (outcomes, broken, next)
        };

        let confirmed = record_outcomes(cx, fs, report, &batch.messages, outcomes);
        if let Some(err) = broken {
            // The in-flight keys stay: whatever reached the destination is claimed next time.
            save(checkpoints, &plan.source, fs).await?;
            return Err(err.into());
        }
        fs.in_flight.clone_from(&unresolved);
        fs.last_uid = fs.last_uid.max(batch.messages.last().map_or(0, |m| m.uid));
        save(checkpoints, &plan.source, fs).await?;
        match next {
            Some(Ok(fetched)) => prefetched = Some(fetched),
            Some(Err(err)) => return Err(err.into()),
            None => {}
        }
        if job.delete_source && !confirmed.is_empty() {
            delete_from_source(sides, fs, &confirmed).await?;
        }
    }

    Ok(())
}

/// Copies one large message by streaming it (a chunk read while one is written).
async fn stream_one<C: CheckpointStore>(
    sides: &mut Sides,
    cx: Cx<'_, C>,
    whole: &mut HashSet<u32>,
    m: &MessageMeta,
) -> (Vec<Appended>, Option<OpError>) {
    let _held = cx
        .budget
        .take(2 * crate::connectors::imap::STREAM_CHUNK)
        .await;
    let streamed = stream_append(
        &mut sides.src,
        &mut sides.dst,
        m.uid,
        u64::from(m.size),
        &cx.plan.dest,
        &m.flags,
        m.internal_date,
    )
    .await;
    match streamed {
        Ok(dest_uid) => (
            vec![Appended::Copied {
                dest_uid,
                bytes: u64::from(m.size),
            }],
            None,
        ),
        Err(StreamError::Refused(why)) => (vec![Appended::Refused(why)], None),
        Err(StreamError::Gone) => (vec![Appended::Gone], None),
        Err(StreamError::SizeMismatch(uid)) => {
            // The destination connection is inside a literal: drop it.
            whole.insert(uid);
            let why = format!("message {uid}'s size was not its length; copying it whole");
            (Vec::new(), Some(OpError::Connection(why)))
        }
        Err(StreamError::Connection(why)) => (Vec::new(), Some(OpError::Connection(why))),
    }
}

/// What became of each message of a batch, in the ledger, the report and the
/// progress; returns the copies the destination confirmed with a UID.
fn record_outcomes<C: CheckpointStore>(
    cx: Cx<'_, C>,
    fs: &mut FolderState,
    report: &mut FolderReport,
    messages: &[&MessageMeta],
    outcomes: Vec<Appended>,
) -> Vec<u32> {
    let Cx {
        job,
        plan,
        progress,
        ..
    } = cx;
    let mut confirmed = Vec::new();
    for (m, outcome) in messages.iter().zip(outcomes) {
        match outcome {
            Appended::Copied { dest_uid, bytes } => {
                crash_point::after_append();
                fs.record(
                    m.uid,
                    Entry {
                        key: m.key.clone(),
                        dest_uid,
                        skipped: false,
                        source_deleted: false,
                        pass: job.pass,
                        removed: false,
                        version: None,
                    },
                );
                fs.failed.remove(&m.uid);
                report.failures.retain(|f| f.uid != m.uid);
                if dest_uid.is_some() {
                    confirmed.push(m.uid);
                }
                report.copied += 1;
                report.bytes += bytes;
                progress.message(&plan.source_path, bytes, Outcome::Copied);
            }
            Appended::Refused(reason) => {
                tracing::warn!(folder = %plan.source_path, uid = m.uid, %reason, "Message refused by the destination");
                fs.failed.insert(m.uid, reason.clone());
                report.failures.retain(|f| f.uid != m.uid);
                report.failures.push(Failure {
                    uid: m.uid,
                    item: None,
                    reason,
                });
                progress.message(&plan.source_path, 0, Outcome::Failed);
            }
            Appended::Gone => {
                // Not recorded: if the source still has it, the end of the pass
                // finds it unaccounted for and says so.
                tracing::warn!(folder = %plan.source_path, uid = m.uid, "The source did not return the message; it is checked again at the end");
            }
        }
    }
    confirmed
}

/// Waits until a folder's UIDNEXT and count stay the same for `SETTLE` (at most ten
/// rounds).
pub(super) async fn settle(dst: &mut ImapConnection, folder: &str) -> Result<(), OpError> {
    let look = |s: FolderStatus| (s.uidnext, s.exists);
    let mut last = look(dst.status(folder).await?);
    for _ in 0..10 {
        tokio::time::sleep(SETTLE).await;
        let now = look(dst.status(folder).await?);
        if now == last {
            break;
        }
        last = now;
    }
    Ok(())
}

/// Deletes source messages whose copies are confirmed, and notes it in the ledger
/// (saved with the next checkpoint; deleting a deleted UID again does nothing).
pub(super) async fn delete_from_source(
    sides: &mut Sides,
    fs: &mut FolderState,
    uids: &[u32],
) -> Result<(), FolderError> {
    for chunk in uids.chunks(BATCH_MESSAGES) {
        if sides.src.delete_uids(chunk).await? {
            for uid in chunk {
                fs.update(*uid, |entry| entry.source_deleted = true);
            }
        }
    }
    Ok(())
}

/// A test hook for the crash tests, compiled only with the `failpoints` feature (the
/// test harness turns it on; a release build has no such code): with
/// `FERRY_TEST_ABORT_AFTER_APPENDS=N` in the environment, the process aborts right after
/// the Nth confirmed APPEND, before the checkpoint records it: the worst moment for a
/// crash.
#[cfg(feature = "failpoints")]
pub(super) mod crash_point {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
    static APPENDS: AtomicU64 = AtomicU64::new(0);

    pub fn after_append() {
        let limit = LIMIT.get_or_init(|| {
            std::env::var("FERRY_TEST_ABORT_AFTER_APPENDS")
                .ok()
                .and_then(|v| v.parse().ok())
        });
        if let Some(limit) = limit
            && APPENDS.fetch_add(1, Ordering::SeqCst) + 1 >= *limit
        {
            std::process::abort();
        }
    }
}

#[cfg(not(feature = "failpoints"))]
pub(super) mod crash_point {
    pub fn after_append() {}
}
