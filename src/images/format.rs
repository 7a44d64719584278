//! `--format` for the listing commands (`images`, `history`, `system df`):
//! Docker's `table` (a header row and aligned columns, with the command's
//! default columns or `table TEMPLATE`), `json` (one object per line), or a
//! Go template per row.

use gtmpl::Value;

use super::table::align;
use super::template::{GoTemplate, strip_table_prefix, unescape_table};
use crate::report::Failure;

/// How a listing prints its rows.
pub struct RowFormat {
    table: bool,
    template: GoTemplate,
}

impl RowFormat {
    /// `format` as given (`None`: `table`); `default_columns` is the
    /// template of a plain `table`; `quiet` turns a table into IDs only.
    pub fn parse(format: Option<&str>, default_columns: &str, quiet: bool) -> Result<RowFormat, Failure> {
        let format = format.unwrap_or("table");
        let (table, body) = if format == "json" {
            (false, "{{json .}}".to_string())
        } else {
            match strip_table_prefix(format) {
                Some(_) if quiet => (false, "{{.ID}}".to_string()),
                Some("") => (true, default_columns.to_string()),
                Some(rest) => (true, unescape_table(rest)),
                None => (false, format.to_string()),
            }
        };
        Ok(RowFormat { table, template: GoTemplate::parse(&body)? })
    }

    /// Prints the rows (after the header, for a table).
    pub fn print(&self, header: &Value, rows: impl IntoIterator<Item = Value>) -> Result<(), Failure> {
        let mut text = String::new();
        if self.table {
            text.push_str(&self.template.render(header)?);
            text.push('\n');
        }
        for row in rows {
            text.push_str(&self.template.render(&row)?);
            text.push('\n');
        }
        print!("{}", if self.table { align(&text) } else { text });
        Ok(())
    }
}
