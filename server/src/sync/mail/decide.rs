//! PURE: what to do with each pending message, given what the destination holds and
//! what was in flight at a crash. No IO, no clock; unit-tested for every case.

use super::*;

/// What to do with one pending source message.
pub(super) enum Decision {
    /// Its copy is at the destination already (uid of that copy).
    Claim {
        dest_uid: u32,
        ours: bool,
    },
    Copy,
    /// In flight when the last run ended and not at the destination (yet).
    Later,
}

/// Decides each pending message, in UID order, from plain data: a copy of it among
/// the destination's `unclaimed` messages (by key, oldest UID first) is claimed, as
/// this migration's when its key was in flight, else as skipped when duplicates are
/// skipped (or replaced when they are overwritten); a message in flight that is not at
/// the destination is looked for again later, unless this is the `last_look`; the rest
/// is copied. Returns one decision per pending message, and the destination copies to
/// replace. What is claimed or replaced leaves `unclaimed`.
pub(super) fn decide(
    pending: &[MessageMeta],
    unclaimed: &mut BTreeMap<String, Vec<u32>>,
    in_flight: &HashSet<String>,
    duplicates: DuplicatePolicy,
    last_look: bool,
) -> (Vec<Decision>, Vec<u32>) {
    let mut decisions = Vec::with_capacity(pending.len());
    let mut to_replace: Vec<u32> = Vec::new();
    for m in pending {
        let ours = in_flight.contains(&m.key);
        let present = unclaimed.get_mut(&m.key).filter(|v| !v.is_empty());
        let decision = match (present, duplicates) {
            (Some(list), _) if ours => Decision::Claim {
                dest_uid: list.remove(0),
                ours: true,
            },
            (None, _) if ours && !last_look => Decision::Later,
            (Some(list), DuplicatePolicy::Skip) => Decision::Claim {
                dest_uid: list.remove(0),
                ours: false,
            },
            (Some(list), DuplicatePolicy::Overwrite) => {
                to_replace.push(list.remove(0));
                Decision::Copy
            }
            _ => Decision::Copy,
        };
        decisions.push(decision);
    }
    unclaimed.retain(|_, v| !v.is_empty());
    (decisions, to_replace)
}

#[cfg(test)]
mod tests {
    use super::super::tests::meta;
    use super::*;

    fn short(d: &Decision) -> String {
        match d {
            Decision::Claim { dest_uid, ours } => format!("claim {dest_uid} ours={ours}"),
            Decision::Copy => "copy".into(),
            Decision::Later => "later".into(),
        }
    }

    /// Three source messages with the same key (a message sent three times) and two
    /// copies at the destination: the two copies are claimed in UID order, the third
    /// is copied; nothing is claimed twice and nothing is dropped.
    #[test]
    fn duplicates_are_claimed_once_each_in_uid_order() {
        let pending = [meta(1, "k"), meta(2, "k"), meta(3, "k"), meta(4, "other")];
        let mut unclaimed = BTreeMap::from([("k".to_owned(), vec![10, 11])]);
        let (decisions, replace) = decide(
            &pending,
            &mut unclaimed,
            &HashSet::new(),
            DuplicatePolicy::Skip,
            false,
        );
        let got: Vec<String> = decisions.iter().map(short).collect();
        assert_eq!(
            got,
            ["claim 10 ours=false", "claim 11 ours=false", "copy", "copy"]
        );
        assert!(replace.is_empty());
        assert!(unclaimed.is_empty(), "what was claimed left the index");
    }

    /// Overwrite replaces each copy once; in flight but absent waits for the last
    /// look, then is copied.
    #[test]
    fn overwrite_replaces_and_an_absent_batch_is_looked_for_until_the_last_look() {
        let pending = [meta(1, "k"), meta(2, "flying")];
        let flying: HashSet<String> = ["flying".to_owned()].into();
        for (last_look, want) in [(false, ["copy", "later"]), (true, ["copy", "copy"])] {
            let mut unclaimed = BTreeMap::from([("k".to_owned(), vec![10])]);
            let (decisions, replace) = decide(
                &pending,
                &mut unclaimed,
                &flying,
                DuplicatePolicy::Overwrite,
                last_look,
            );
            let got: Vec<String> = decisions.iter().map(short).collect();
            assert_eq!(got, want);
            assert_eq!(replace, [10]);
        }
    }
}
