//! The Odoo models, records and methods towerhook names, in one place.

/// Webhooks of Cetmix Tower.
pub const WEBHOOK_MODEL: &str = "cx.tower.webhook";
pub const AUTHENTICATOR_MODEL: &str = "cx.tower.webhook.authenticator";
/// Call logs, read-only for Root in the module: created through the companion addon's
/// method or with the access `towerhook odoo-setup` grants.
pub const LOG_MODEL: &str = "cx.tower.webhook.log";
/// The companion addon's batch method of the log model: idempotent by request id.
pub const ADDON_CREATE_LOGS: &str = "towerhook_create_logs";
/// The superuser the module runs webhook code as unless "Run as User" says otherwise.
pub const SUPERUSER_ID: i64 = 1;
