//! Column alignment as the docker CLI does it: Go's `text/tabwriter` with
//! minimum width 10, padding 3 and spaces. Cells are separated by tabs; the
//! last cell of a line is not a column and is written as it is. A column's
//! width is set per block of consecutive lines that have a cell there, as
//! tabwriter does, so output matches docker's byte for byte.

/// Docker's table settings.
const MIN_WIDTH: usize = 10;
const PADDING: usize = 3;

/// Aligns tab-separated `text` (lines end with `\n`).
pub fn align(text: &str) -> String {
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let mut out = String::with_capacity(text.len() * 2);
    let mut widths = Vec::new();
    format_block(&lines, 0, lines.len(), &mut widths, &mut out);
    out
}

fn cell_width(cell: &str) -> usize {
    cell.chars().count()
}

/// tabwriter's recursive `format`: finds the blocks of lines that have a
/// (tab-terminated) cell in the next column, sizes that column per block,
/// and recurses to the columns right of it.
fn format_block(
    lines: &[Vec<&str>],
    mut start: usize,
    end: usize,
    widths: &mut Vec<usize>,
    out: &mut String,
) {
    let column = widths.len();
    let mut line = start;
    while line < end {
        if column + 1 >= lines[line].len() {
            line += 1;
            continue;
        }
        write_lines(lines, start, line, widths, out);
        start = line;
        let mut width = MIN_WIDTH;
        while line < end && column + 1 < lines[line].len() {
            width = width.max(cell_width(lines[line][column]) + PADDING);
            line += 1;
        }
        widths.push(width);
        format_block(lines, start, line, widths, out);
        widths.pop();
        start = line;
    }
    write_lines(lines, start, end, widths, out);
}

fn write_lines(lines: &[Vec<&str>], start: usize, end: usize, widths: &[usize], out: &mut String) {
    for cells in &lines[start..end] {
        for (j, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if j + 1 < cells.len()
                && let Some(width) = widths.get(j)
            {
                out.extend(std::iter::repeat_n(' ', width.saturating_sub(cell_width(cell))));
            }
        }
        out.push('\n');
    }
}

/// Docker's `Ellipsis`: at most `max` characters, the last one `…` when
/// the text was cut.
pub fn ellipsis(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_string();
    }
    if max <= 1 {
        return text.chars().take(max).collect();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

/// Docker's short image ID: 12 hex digits, without `sha256:`.
pub fn short_id(full: &str) -> String {
    let hex = full.strip_prefix("sha256:").unwrap_or(full);
    hex.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_docker_history_layout() {
        // What `docker history busybox:local` printed.
        let text = "IMAGE\tCREATED\tCREATED BY\tSIZE\tCOMMENT\n49730e4e814a\tAbout an hour ago\t\t1.98MB\tImported from -\n";
        assert_eq!(
            align(text),
            "IMAGE          CREATED             CREATED BY   SIZE      COMMENT\n\
             49730e4e814a   About an hour ago                1.98MB    Imported from -\n"
        );
    }

    #[test]
    fn blocks_are_sized_separately() {
        let text = "a\tb\nlonger-than-ten\tc\nsingle\nx\ty\n";
        assert_eq!(align(text), "a                 b\nlonger-than-ten   c\nsingle\nx         y\n");
    }

    #[test]
    fn ellipsis_cuts_to_width() {
        assert_eq!(ellipsis("abcdef", 4), "abc…");
        assert_eq!(ellipsis("abcd", 4), "abcd");
        assert_eq!(short_id("sha256:49730e4e814ac7e9cfb2"), "49730e4e814a");
    }
}
