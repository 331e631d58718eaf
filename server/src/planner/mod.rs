//! Pure decisions: discovered facts in, a plan out. No IO, no clock: the same input
//! always gives the same plan, so every rule is tested with one-line cases.

pub mod contacts;
pub mod folders;
