//! Where data enters Ferry: HTTP (the console's pages and the REST API), the
//! administrator's command line (`ferry migrate`), and lists of mailboxes in files
//! (`lists`: CSV and spreadsheets, read into requests), and emails to the support address
//! (`inbound`: read into what a ticket keeps; `support`: the task that reads them from
//! the support mailbox). Intake parses and authenticates, then
//! calls the service layer (or, for `ferry migrate`, the engine); it holds no business
//! rule of its own.

pub mod cli;
pub mod http;
pub mod inbound;
pub mod lists;
pub mod support;
