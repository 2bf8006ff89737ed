//! The environment overlay: `PORTCULLIS_*` variables on top of the file, for every key the
//! defaults have, and the key a deserialization error points at.

/// Overlay `PORTCULLIS_*` variables on `table`, for every key that `defaults` has.
pub(super) fn apply_env(
    table: &mut toml::Table,
    defaults: &toml::Table,
    prefix: &str,
    env: &impl Fn(&str) -> Option<String>,
) {
    for (key, default) in defaults {
        let name = format!("{prefix}{}", key.to_uppercase().replace('-', "_"));
        if let toml::Value::Table(sub_defaults) = default {
            let entry = table
                .entry(key.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(sub) = entry {
                apply_env(sub, sub_defaults, &format!("{name}_"), env);
            }
        } else if let Some(raw) = env(&name) {
            table.insert(key.clone(), env_value(&raw, default));
        }
    }
}

/// Interpret an environment string with the type of the key's default.
fn env_value(raw: &str, default: &toml::Value) -> toml::Value {
    let parsed = match default {
        toml::Value::Integer(_) => raw.trim().parse().ok().map(toml::Value::Integer),
        toml::Value::Boolean(_) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(toml::Value::Boolean(true)),
            "false" | "0" | "no" => Some(toml::Value::Boolean(false)),
            _ => None,
        },
        // A list is comma-separated: `10.0.0.0/8, 192.168.1.1`.
        toml::Value::Array(_) => Some(toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        )),
        _ => None,
    };
    // A value that does not fit stays a string, and deserialization names the key.
    parsed.unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

/// The dotted key an error's span points into.
pub(super) fn key_of_error(text: &str, error: &toml::de::Error) -> Option<String> {
    let span = error.span()?;
    let mut section = String::new();
    let mut offset = 0;
    let mut found = None;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.starts_with('[') && trimmed.ends_with(']') {
            section = trimmed.trim_matches(|c| c == '[' || c == ']').to_string();
        }
        let end = offset + line.len();
        if span.start < end && span.start >= offset {
            if let Some((key, _)) = trimmed.split_once('=') {
                let key = key.trim().trim_matches('"');
                found = Some(if section.is_empty() {
                    key.to_string()
                } else {
                    format!("{section}.{key}")
                });
            } else if !section.is_empty() {
                found = Some(section.clone());
            }
            break;
        }
        offset = end;
    }
    found
}
