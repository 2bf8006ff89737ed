//! The built-in `admin` authorization server and the scopes of the management API
//! (`/admin/v1/`): its access tokens, carrying these scopes, are the only keys to the API.

/// The id of the server whose tokens the management API accepts (issuer `{base}/oauth2/admin`).
pub const ADMIN_SERVER: &str = "admin";
/// The `aud` of its access tokens.
pub const ADMIN_AUDIENCE: &str = "urn:portcullis:admin";

pub const SERVERS_MANAGE: &str = "portcullis.servers.manage";
pub const CLIENTS_READ: &str = "portcullis.clients.read";
pub const CLIENTS_MANAGE: &str = "portcullis.clients.manage";
pub const USERS_READ: &str = "portcullis.users.read";
pub const USERS_MANAGE: &str = "portcullis.users.manage";
pub const KEYS_MANAGE: &str = "portcullis.keys.manage";
pub const AUDIT_READ: &str = "portcullis.audit.read";
pub const GROUPS_MANAGE: &str = "portcullis.groups.manage";
pub const POLICIES_MANAGE: &str = "portcullis.policies.manage";

/// Every scope with the description the consent page and `scope list` show.
pub const ADMIN_SCOPES: &[(&str, &str)] = &[
    (
        SERVERS_MANAGE,
        "Read and change authorization servers and their policy",
    ),
    (CLIENTS_READ, "Read clients"),
    (
        CLIENTS_MANAGE,
        "Create, change and delete clients and their secrets",
    ),
    (USERS_READ, "Read users, their sessions and grants"),
    (
        USERS_MANAGE,
        "Create, change and delete users; sign them out",
    ),
    (KEYS_MANAGE, "Read and rotate signing keys"),
    (AUDIT_READ, "Read the audit log"),
    (
        GROUPS_MANAGE,
        "Create, change and delete groups and their members",
    ),
    (
        POLICIES_MANAGE,
        "Create, change and delete access policies and their rules",
    ),
];

/// A `*.manage` scope covers reading the same resources.
pub fn covers(granted: &str, needed: &str) -> bool {
    granted == needed
        || (needed.ends_with(".read")
            && granted.strip_suffix(".manage") == needed.strip_suffix(".read"))
}
