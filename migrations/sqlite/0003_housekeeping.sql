-- Housekeeping deletes by expiry: index the tables 0001 left without one.
CREATE INDEX grants_by_expiry ON grants (expires_at);
CREATE INDEX refresh_by_idle_expiry ON refresh_tokens (idle_expires_at);
CREATE INDEX rate_limits_by_window ON rate_limits (window_start);
