//! The authorization endpoint's flow: validate the request, sign the user in, ask consent,
//! issue. `request` validates, `interaction` keeps a request across pages, `decision` decides,
//! `response` delivers to the client.

pub mod decision;
pub mod interaction;
pub mod request;
pub mod response;
// High-assurance clients (issue 21).
pub mod pushed;
pub mod request_object;

pub use decision::{Continuing, Flow};
pub use interaction::{Browser, InteractionState};
pub use request::AuthorizationRequest;
pub use response::{AuthorizeError, RedirectTarget};
