//! The standard claims of a user (OpenID Connect Core §5.1), from `user create` flags.

use crate::manage::users::{is_birthdate, is_web_url, looks_like_email};
use clap::Args;
use serde_json::{json, Map, Value};

use crate::cli::CliError;

/// The standard claims of OpenID Connect Core §5.1 a user may be given.
#[derive(Debug, Args)]
#[command(next_help_heading = "Claims (OpenID Connect Core §5.1)")]
pub struct ClaimArgs {
    /// E-mail address.
    #[arg(long)]
    email: Option<String>,
    /// The e-mail address has been verified (needs --email).
    #[arg(long)]
    email_verified: bool,
    /// Full name, for display.
    #[arg(long)]
    name: Option<String>,
    /// Given (first) name.
    #[arg(long)]
    given_name: Option<String>,
    /// Family name (surname).
    #[arg(long)]
    family_name: Option<String>,
    /// Middle name.
    #[arg(long)]
    middle_name: Option<String>,
    /// Casual name.
    #[arg(long)]
    nickname: Option<String>,
    /// Shorthand name the user wants to be called (not unique).
    #[arg(long)]
    preferred_username: Option<String>,
    /// Profile page URL.
    #[arg(long)]
    profile: Option<String>,
    /// Picture URL.
    #[arg(long)]
    picture: Option<String>,
    /// Web page or blog URL.
    #[arg(long)]
    website: Option<String>,
    /// female, male, or another value.
    #[arg(long)]
    gender: Option<String>,
    /// YYYY-MM-DD, or YYYY for the year only (0000 for "year not given").
    #[arg(long)]
    birthdate: Option<String>,
    /// A time zone database name, such as Europe/Paris.
    #[arg(long)]
    zoneinfo: Option<String>,
    /// A BCP 47 language tag, such as en-US.
    #[arg(long)]
    locale: Option<String>,
    /// E.164 is recommended: +1 (425) 555-1212.
    #[arg(long)]
    phone_number: Option<String>,
    /// The phone number has been verified (needs --phone-number).
    #[arg(long)]
    phone_number_verified: bool,
    /// The full mailing address, lines separated by newlines.
    #[arg(long)]
    address_formatted: Option<String>,
    /// Street address; lines separated by newlines.
    #[arg(long)]
    address_street: Option<String>,
    /// City or locality.
    #[arg(long)]
    address_locality: Option<String>,
    /// State, province or region.
    #[arg(long)]
    address_region: Option<String>,
    /// Postal or ZIP code.
    #[arg(long)]
    address_postal_code: Option<String>,
    /// Country name.
    #[arg(long)]
    address_country: Option<String>,
}

impl ClaimArgs {
    /// The claims object to store, checked as far as §5.1 defines the values.
    pub fn into_claims(self) -> Result<Map<String, Value>, CliError> {
        let mut claims = Map::new();
        if let Some(email) = &self.email {
            if !looks_like_email(email) {
                return Err(CliError(format!(
                    "--email `{email}` is not an e-mail address"
                )));
            }
        }
        if self.email_verified && self.email.is_none() {
            return Err(CliError("--email-verified needs --email".into()));
        }
        if self.phone_number_verified && self.phone_number.is_none() {
            return Err(CliError(
                "--phone-number-verified needs --phone-number".into(),
            ));
        }
        for (flag, value) in [
            ("--profile", &self.profile),
            ("--picture", &self.picture),
            ("--website", &self.website),
        ] {
            if let Some(value) = value {
                if !is_web_url(value) {
                    return Err(CliError(format!("{flag} `{value}` is not an http(s) URL")));
                }
            }
        }
        if let Some(birthdate) = &self.birthdate {
            if !is_birthdate(birthdate) {
                return Err(CliError(format!(
                    "--birthdate `{birthdate}` is not YYYY-MM-DD or YYYY"
                )));
            }
        }
        // §5.1: *_verified are booleans about the value next to them, so they are stored
        // whenever that value is, false unless the operator vouches for it.
        let email_verified = self.email.as_ref().map(|_| self.email_verified);
        let phone_verified = self
            .phone_number
            .as_ref()
            .map(|_| self.phone_number_verified);
        let strings = [
            ("name", self.name),
            ("given_name", self.given_name),
            ("family_name", self.family_name),
            ("middle_name", self.middle_name),
            ("nickname", self.nickname),
            ("preferred_username", self.preferred_username),
            ("profile", self.profile),
            ("picture", self.picture),
            ("website", self.website),
            ("email", self.email),
            ("gender", self.gender),
            ("birthdate", self.birthdate),
            ("zoneinfo", self.zoneinfo),
            ("locale", self.locale),
            ("phone_number", self.phone_number),
        ];
        insert_strings(&mut claims, strings)?;
        if let Some(verified) = email_verified {
            claims.insert("email_verified".into(), json!(verified));
        }
        if let Some(verified) = phone_verified {
            claims.insert("phone_number_verified".into(), json!(verified));
        }
        // §5.1.1: the address is an object of its own.
        let mut address = Map::new();
        insert_strings(
            &mut address,
            [
                ("formatted", self.address_formatted),
                ("street_address", self.address_street),
                ("locality", self.address_locality),
                ("region", self.address_region),
                ("postal_code", self.address_postal_code),
                ("country", self.address_country),
            ],
        )?;
        if !address.is_empty() {
            claims.insert("address".into(), Value::Object(address));
        }
        Ok(claims)
    }
}

/// The claims `user update --unset` may remove: the standard claims a scope releases (OIDC
/// Core §5.4), but `updated_at`, which the server keeps, and the `*_verified` flags, which go
/// with the value they qualify.
fn unsettable() -> impl Iterator<Item = &'static str> {
    use crate::tokens::claims::{ADDRESS, EMAIL, PHONE, PROFILE};
    [PROFILE, EMAIL, ADDRESS, PHONE]
        .into_iter()
        .flatten()
        .copied()
        .filter(|name| *name != "updated_at" && !name.ends_with("_verified"))
}

/// Apply `user update`'s changes to a user's stored claims: `given` (from `into_claims`)
/// replaces claims of the same name, except that address parts join the stored address;
/// `unset` removes claims. The names changed, sorted, for the audit log.
pub fn merge(
    stored: &mut Map<String, Value>,
    given: Map<String, Value>,
    unset: &[String],
) -> Result<Vec<String>, CliError> {
    if given.is_empty() && unset.is_empty() {
        return Err(CliError(
            "nothing to change: give a claim flag (see --help) or --unset CLAIM".into(),
        ));
    }
    for name in unset {
        if !unsettable().any(|claim| claim == name) {
            return Err(CliError(format!(
                "--unset `{name}`: not a claim of a user (one of {})",
                unsettable().collect::<Vec<_>>().join(", ")
            )));
        }
        if given.contains_key(name.as_str()) {
            return Err(CliError(format!("`{name}` is both set and unset")));
        }
    }
    let mut changed: Vec<String> = given.keys().cloned().collect();
    for (name, value) in given {
        match (name.as_str(), value, stored.get_mut("address")) {
            ("address", Value::Object(parts), Some(Value::Object(address))) => {
                address.extend(parts);
            }
            (_, value, _) => {
                stored.insert(name, value);
            }
        }
    }
    // A value's `*_verified` flag goes with it. Only what was there counts as changed.
    for name in unset {
        let verified = match name.as_str() {
            "email" => Some("email_verified"),
            "phone_number" => Some("phone_number_verified"),
            _ => None,
        };
        for claim in std::iter::once(name.as_str()).chain(verified) {
            if stored.remove(claim).is_some() {
                changed.push(claim.to_string());
            }
        }
    }
    changed.sort();
    changed.dedup();
    Ok(changed)
}

fn insert_strings<const N: usize>(
    map: &mut Map<String, Value>,
    values: [(&str, Option<String>); N],
) -> Result<(), CliError> {
    for (claim, value) in values {
        if let Some(value) = value {
            if value.trim().is_empty() {
                return Err(CliError(format!("the {claim} claim must not be empty")));
            }
            map.insert(claim.into(), Value::String(value));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn merge_replaces_given_claims_joins_address_parts_and_unsets() {
        let mut stored = object(json!({
            "name": "Ada", "nickname": "ada", "email": "a@x.example", "email_verified": true,
            "address": { "street_address": "1 Lane", "country": "GB" },
        }));
        let given = object(json!({
            "name": "Ada L.", "address": { "locality": "London", "country": "UK" },
        }));
        let changed = merge(
            &mut stored,
            given,
            &["nickname".into(), "email".into(), "website".into()],
        )
        .unwrap();
        // The verified flag went with the e-mail; the absent website changed nothing.
        assert_eq!(
            changed,
            ["address", "email", "email_verified", "name", "nickname"]
        );
        assert_eq!(
            Value::Object(stored),
            json!({
                "name": "Ada L.",
                "address": { "street_address": "1 Lane", "locality": "London", "country": "UK" },
            })
        );
    }

    #[test]
    fn merge_refuses_nothing_unknown_and_contradictory_changes() {
        let mut stored = object(json!({ "name": "Ada" }));
        assert!(merge(&mut stored, Map::new(), &[]).is_err());
        assert!(merge(&mut stored, Map::new(), &["email_verified".into()]).is_err());
        assert!(merge(&mut stored, Map::new(), &["sub".into()]).is_err());
        let given = object(json!({ "name": "B" }));
        assert!(merge(&mut stored, given, &["name".into()]).is_err());
        assert_eq!(Value::Object(stored), json!({ "name": "Ada" }));
    }

    #[test]
    fn birthdates_follow_oidc_core_5_1() {
        for ok in ["1990-12-31", "0000-02-29", "1984"] {
            assert!(is_birthdate(ok), "{ok}");
        }
        for bad in [
            "",
            "90",
            "1990-13-01",
            "1990-1-1",
            "1990-12",
            "12/31/1990",
            "1990-12-3x",
        ] {
            assert!(!is_birthdate(bad), "{bad}");
        }
    }

    #[test]
    fn emails_need_an_at_sign_between_two_parts() {
        assert!(looks_like_email("alice@example.com"));
        for bad in ["alice", "@example.com", "alice@", "a lice@example.com"] {
            assert!(!looks_like_email(bad), "{bad}");
        }
    }
}
