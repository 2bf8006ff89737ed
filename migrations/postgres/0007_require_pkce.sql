-- RFC 9700 §2.1.1: a server may require PKCE of confidential clients too (public clients always
-- need it). Off by default: existing confidential clients keep working unchanged.
ALTER TABLE authorization_servers ADD COLUMN require_pkce BOOLEAN NOT NULL DEFAULT FALSE;
