//! A webhook call's path: the route that reads it (`route`), the call as the flow sees it
//! (`request`, `payload`), the client's address (`client_ip`), and the module's flow itself
//! (`flow`), which answers and shapes the log record.

pub mod client_ip;
pub mod flow;
pub mod payload;
pub mod request;
pub mod route;
