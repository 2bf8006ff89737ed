//! `--limit` and `--after` of the list commands: keyset paging, so a page costs the same at the
//! start of a list of ten thousand as at its end. A page is the same JSON array as the whole
//! list; the next page starts `--after` the last one's key (named in each command's help).

/// The most one page may hold.
pub const MAX_LIMIT: u32 = 1000;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct PageArgs {
    /// At most this many (1 to 1000); without it, all of them.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=MAX_LIMIT as i64))]
    pub limit: Option<u32>,
    /// Start after this key: the last one of the previous page.
    #[arg(long, value_name = "KEY", allow_hyphen_values = true)]
    pub after: Option<String>,
}

impl PageArgs {
    pub fn page(&self) -> crate::store::Page<'_> {
        crate::store::Page {
            after: self.after.as_deref(),
            limit: self.limit,
        }
    }
}
