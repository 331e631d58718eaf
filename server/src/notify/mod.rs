//! Notifications. Emails are rendered by [`crate::render`] and written to the outbox by
//! the caller, in the transaction of the change they report; the [`Dispatcher`] here
//! delivers them over SMTP with retries. With no SMTP configured they wait in the
//! outbox, which the console shows.

mod dispatcher;

pub use dispatcher::{Dispatcher, SmtpMailer};
