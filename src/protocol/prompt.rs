//! `prompt` (OIDC Core §3.1.2.1).

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

impl Prompt {
    /// Err with a description when the value is not allowed.
    pub fn parse(value: Option<&str>) -> Result<Self, &'static str> {
        let mut prompt = Prompt::default();
        for part in value.unwrap_or("").split(' ').filter(|s| !s.is_empty()) {
            match part {
                "none" => prompt.none = true,
                "login" => prompt.login = true,
                "consent" => prompt.consent = true,
                // We keep no list of accounts to choose from: signing in again is the closest.
                "select_account" => prompt.login = true,
                _ => return Err("unknown prompt value"),
            }
        }
        if prompt.none && (prompt.login || prompt.consent) {
            return Err("prompt=none cannot be combined with other values");
        }
        Ok(prompt)
    }
}
