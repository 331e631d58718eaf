//! Where data enters Ferry: HTTP (the console's pages and the REST API) and the
//! administrator's command line (`ferry migrate`). Intake parses and authenticates, then
//! calls the service layer (or, for `ferry migrate`, the engine); it holds no business
//! rule of its own.

pub mod cli;
pub mod http;
