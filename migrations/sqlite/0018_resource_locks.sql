-- Short leases on single resources of the management API (`/admin/v1/`): a request with
-- `If-Match` holds one while it compares the ETag and writes, so two writers on any replicas
-- cannot both pass the same precondition. A holder that dies leaves a lease that runs out.
CREATE TABLE resource_locks (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
