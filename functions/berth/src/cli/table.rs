//! Aligned text tables: a header row, then one row per item.

use super::error::sanitize;

/// Space between columns.
const GAP: &str = "   ";

#[derive(Debug)]
pub(crate) struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(headers: &[&'static str]) -> Self {
        Self {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; cells are made safe to print (no control characters),
    /// missing cells are empty and extra ones dropped.
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        let mut cells: Vec<String> = cells.iter().map(|c| sanitize(c)).collect();
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    /// The table as text, each line ending in `\n`, columns padded to their
    /// widest cell (in characters), no trailing spaces.
    pub(crate) fn render(&self) -> String {
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let mut out = String::new();
        let headers = self.headers.iter().map(|h| (*h).to_owned()).collect();
        for row in std::iter::once(&headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str(GAP);
                }
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', w - width(cell)));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_under_their_headers() {
        let mut t = Table::new(&["ID", "NAME", "ADMIN"]);
        t.row(vec!["1".into(), "administrator".into(), "true".into()]);
        t.row(vec!["12".into(), "bo".into(), "false".into()]);
        assert_eq!(
            t.render(),
            "ID   NAME            ADMIN\n\
             1    administrator   true\n\
             12   bo              false\n"
        );
    }

    #[test]
    fn an_empty_table_is_its_header() {
        assert_eq!(Table::new(&["ID", "NAME"]).render(), "ID   NAME\n");
    }

    #[test]
    fn widths_count_characters_and_lines_have_no_trailing_space() {
        let mut t = Table::new(&["A", "B"]);
        t.row(vec!["é".into(), String::new()]);
        t.row(vec!["xyz".into()]);
        assert_eq!(t.render(), "A     B\né\nxyz\n");
    }

    #[test]
    fn control_characters_cannot_break_the_layout() {
        let mut t = Table::new(&["A", "B"]);
        t.row(vec!["a\nb".into(), "\u{1b}[2J".into()]);
        assert_eq!(t.render(), "A     B\na b    [2J\n");
    }
}
