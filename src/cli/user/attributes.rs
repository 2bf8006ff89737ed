//! Custom user attributes (`--attribute KEY=VALUE`, `--unset-attribute KEY`): anything an app
//! needs that the standard claims do not carry, released by `claim create --attribute KEY`.

use serde_json::{Map, Value};

use crate::cli::CliError;
use crate::manage::users::check_attribute_key;

/// `KEY=VALUE`: VALUE is JSON when it parses as JSON, a string otherwise.
pub fn parse(raw: &str) -> Result<(String, Value), String> {
    let (key, value) = raw
        .split_once('=')
        .ok_or_else(|| format!("`{raw}` is not KEY=VALUE"))?;
    let key = check_key(key)?;
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
    if value.is_null() {
        return Err(format!(
            "attribute `{key}` must not be null; remove it with --unset-attribute {key}"
        ));
    }
    Ok((key, value))
}

fn check_key(key: &str) -> Result<String, String> {
    check_attribute_key(key)
}

/// Set and remove attributes in `stored`; the names changed, for the audit log.
pub fn merge(
    stored: &mut Map<String, Value>,
    given: Vec<(String, Value)>,
    unset: &[String],
) -> Result<Vec<String>, CliError> {
    let mut changed = Vec::new();
    for key in unset {
        let key = check_key(key).map_err(CliError)?;
        if given.iter().any(|(k, _)| *k == key) {
            return Err(CliError(format!("attribute `{key}` is both set and unset")));
        }
        if stored.remove(&key).is_none() {
            return Err(CliError(format!("the user has no attribute `{key}`")));
        }
        changed.push(key);
    }
    for (key, value) in given {
        stored.insert(key.clone(), value);
        changed.push(key);
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_json_when_they_parse_and_strings_otherwise() {
        assert_eq!(parse("level=3").unwrap(), ("level".into(), json!(3)));
        assert_eq!(
            parse("teams=[\"a\"]").unwrap(),
            ("teams".into(), json!(["a"]))
        );
        assert_eq!(parse("dept=R&D").unwrap(), ("dept".into(), json!("R&D")));
        assert_eq!(parse("eq=a=b").unwrap(), ("eq".into(), json!("a=b")));
        assert!(parse("email=x@example.com").is_err(), "a standard claim");
        assert!(parse("sub=x").is_err(), "a protocol claim");
        assert!(parse("novalue").is_err());
        assert!(parse("gone=null").is_err());
    }
}
