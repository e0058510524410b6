//! Output formatting that reproduces the Go libraries Consul's CLI prints with, byte for
//! byte: `ryanuber/columnize` (tables glued with two spaces) and `text/tabwriter` (the
//! aligned blocks of `kv get -detailed` and `catalog services -tags`), plus Go's JSON
//! escaping for `kv export`.

use std::io::Write;

fn rune_len(s: &str) -> usize {
    s.chars().count()
}

/// `columnize.Format(lines, &Config{Delim: delim})`: each line is split at `delim`,
/// cells are trimmed, every column but a line's last is left-aligned to the widest cell
/// of that column plus two spaces. No trailing newline (as columnize returns it).
pub fn columnize_delim(lines: &[String], delim: &str) -> String {
    let rows: Vec<Vec<&str>> = lines
        .iter()
        .map(|l| l.split(delim).map(str::trim).collect())
        .collect();
    let mut widths: Vec<usize> = Vec::new();
    for r in &rows {
        for (i, cell) in r.iter().enumerate() {
            let w = rune_len(cell);
            match widths.get_mut(i) {
                Some(cur) if *cur < w => *cur = w,
                Some(_) => {}
                None => widths.push(w),
            }
        }
    }
    let mut out = String::new();
    for r in &rows {
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                out.push_str(cell);
                out.push('\n');
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(widths[i].saturating_sub(rune_len(cell))));
                out.push_str("  ");
            }
        }
    }
    if out.ends_with('\n') {
        out.pop();
    }
    out
}

/// `columnize.SimpleFormat` over rows of cells, with a trailing newline (ready for
/// `print!`). Cells must not contain the unit separator `\x1f`.
pub fn columnize(rows: &[Vec<String>]) -> String {
    let lines: Vec<String> = rows.iter().map(|r| r.join("\x1f")).collect();
    let mut s = columnize_delim(&lines, "\x1f");
    s.push('\n');
    s
}

/// One line of tabwriter input: tab-terminated cells plus the trailing text.
struct TabLine {
    cells: Vec<Vec<u8>>,
}

fn cell_width(c: &[u8]) -> usize {
    String::from_utf8_lossy(c).chars().count()
}

/// Go's `tabwriter.NewWriter(w, minwidth, tabwidth, padding, ' ', 0)` applied to
/// `input` and flushed: cells end at `\t` (or `\v`), lines at `\n` (`\f` also ends the
/// column blocks); a column block is a run of consecutive lines that have a cell in that
/// column, padded to its widest cell plus `padding` (at least `minwidth`). The text after
/// a line's last tab is never padded.
pub fn tabwrite(input: &[u8], minwidth: usize, padding: usize) -> Vec<u8> {
    let mut out = Vec::new();
    // Split into flush segments at '\f'; each is formatted on its own.
    let mut segments: Vec<Vec<TabLine>> = vec![Vec::new()];
    let mut cells: Vec<Vec<u8>> = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    for &b in input {
        match b {
            b'\t' | b'\x0b' => cells.push(std::mem::take(&mut cur)),
            b'\n' | b'\x0c' => {
                cells.push(std::mem::take(&mut cur));
                if let Some(seg) = segments.last_mut() {
                    seg.push(TabLine {
                        cells: std::mem::take(&mut cells),
                    });
                }
                if b == b'\x0c' {
                    segments.push(Vec::new());
                }
            }
            _ => cur.push(b),
        }
    }
    cells.push(cur);
    // The unterminated last line is kept (written without a newline).
    if let Some(seg) = segments.last_mut() {
        seg.push(TabLine { cells });
    }
    let nseg = segments.len();
    for (si, seg) in segments.iter().enumerate() {
        let mut widths = Vec::new();
        let last_segment = si + 1 == nseg;
        format_block(
            &mut out,
            seg,
            0,
            seg.len(),
            &mut widths,
            minwidth,
            padding,
            last_segment,
        );
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn format_block(
    out: &mut Vec<u8>,
    lines: &[TabLine],
    mut line0: usize,
    line1: usize,
    widths: &mut Vec<usize>,
    minwidth: usize,
    padding: usize,
    last_segment: bool,
) {
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].cells.len() {
            this += 1;
            continue;
        }
        // A cell exists in this column: write the lines before the block, then the block.
        write_lines(out, lines, line0, this, widths, last_segment);
        line0 = this;
        let mut width = minwidth;
        while this < line1 && column + 1 < lines[this].cells.len() {
            width = width.max(cell_width(&lines[this].cells[column]) + padding);
            this += 1;
        }
        widths.push(width);
        format_block(
            out,
            lines,
            line0,
            this,
            widths,
            minwidth,
            padding,
            last_segment,
        );
        widths.pop();
        line0 = this;
    }
    write_lines(out, lines, line0, line1, widths, last_segment);
}

fn write_lines(
    out: &mut Vec<u8>,
    lines: &[TabLine],
    line0: usize,
    line1: usize,
    widths: &[usize],
    last_segment: bool,
) {
    for (i, line) in lines.iter().enumerate().take(line1).skip(line0) {
        for (j, c) in line.cells.iter().enumerate() {
            out.extend_from_slice(c);
            if j + 1 < line.cells.len() {
                if let Some(&w) = widths.get(j) {
                    out.extend(std::iter::repeat_n(b' ', w.saturating_sub(cell_width(c))));
                }
            }
        }
        if !(last_segment && i + 1 == lines.len()) {
            out.push(b'\n');
        }
    }
}

/// Go's `encoding/json` HTML-safe escaping applied to serialized JSON: `<`, `>`, `&`,
/// U+2028 and U+2029 become `\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`.
pub fn go_json_escape(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for ch in json.chars() {
        match ch {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Serializes `v` like Go's `json.MarshalIndent(v, "", indent)`.
pub fn marshal_indent<T: serde::Serialize>(v: &T, indent: &str) -> Result<String, String> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    v.serialize(&mut ser).map_err(|e| e.to_string())?;
    Ok(go_json_escape(&String::from_utf8_lossy(&buf)))
}

/// Writes raw bytes to stdout (ignoring a closed pipe, as Go's CLI does).
pub fn stdout_bytes(b: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(b);
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn columnize_matches_go() {
        let t = columnize_delim(&s(&["Node|ID|Address", "n1|abc|127.0.0.1"]), "|");
        assert_eq!(t, "Node  ID   Address\nn1    abc  127.0.0.1");
        // cells are trimmed; an empty last cell leaves the padding in place
        let t = columnize_delim(&s(&["a | b|c", "long||"]), "|");
        assert_eq!(t, "a     b  c\nlong     ");
        // rows with fewer cells use only the columns they have
        let t = columnize_delim(&s(&["x|y|z", "only"]), "|");
        assert_eq!(t, "x     y  z\nonly");
        let rows = vec![
            vec!["Node".to_string(), "Address".to_string()],
            vec!["n1".to_string(), "127.0.0.1".to_string()],
        ];
        assert_eq!(columnize(&rows), "Node  Address\nn1    127.0.0.1\n");
        assert_eq!(columnize_delim(&[], "|"), "");
    }

    #[test]
    fn tabwriter_detailed_block() {
        let input = b"CreateIndex\t5\nFlags\t0\nSession\t-\nValue\tbar";
        let out = String::from_utf8(tabwrite(input, 0, 6)).unwrap();
        assert_eq!(
            out,
            "CreateIndex      5\nFlags            0\nSession          -\nValue            bar"
        );
        // trailing newline kept when the input ends with one
        let out = String::from_utf8(tabwrite(b"a\tb\nccc\td\n", 0, 6)).unwrap();
        assert_eq!(out, "a        b\nccc      d\n");
    }

    #[test]
    fn tabwriter_blocks_break_at_lines_without_cells() {
        // A value with newlines: the continuation lines have no cells and end the block.
        let input = b"Key\tk\nValue\tline1\nline2\nzz\tq";
        let out = String::from_utf8(tabwrite(input, 0, 6)).unwrap();
        assert_eq!(out, "Key        k\nValue      line1\nline2\nzz      q");
        // Empty trailing cells are padded like any other.
        let out = String::from_utf8(tabwrite(b"consul\t\nweb\trails\n", 0, 6)).unwrap();
        assert_eq!(out, "consul      \nweb         rails\n");
        // A tab inside the last cell opens a second column for that line only.
        let out = String::from_utf8(tabwrite(b"Flags\t0\nValue\ta\tb", 0, 6)).unwrap();
        assert_eq!(out, "Flags      0\nValue      a      b");
    }

    #[test]
    fn go_json() {
        let v = serde_json::json!([{"key": "a<b>&c", "flags": 0}]);
        let s = marshal_indent(&v, "\t").unwrap();
        assert_eq!(
            s,
            "[\n\t{\n\t\t\"flags\": 0,\n\t\t\"key\": \"a\\u003cb\\u003e\\u0026c\"\n\t}\n]"
        );
        let empty: Vec<u8> = Vec::new();
        assert_eq!(marshal_indent(&empty, "\t").unwrap(), "[]");
    }
}
