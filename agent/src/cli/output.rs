//! Output helpers: Consul's `columnize` tables (columns glued with two spaces) and the
//! aligned key/value blocks of `-detailed`.

/// Align rows into columns separated by two spaces (Consul's `columnize`).
pub fn columnize(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `Key   Value` lines padded like Go's tabwriter with padding 6 (`kv get -detailed`).
pub fn detailed(pairs: &[(&str, String)]) -> String {
    let w = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 6;
    pairs.iter().map(|(k, v)| format!("{k:<w$}{v}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let t = columnize(&[
            vec!["Node".into(), "Address".into()],
            vec!["n1".into(), "127.0.0.1".into()],
        ]);
        assert_eq!(t, "Node  Address\nn1    127.0.0.1\n");
        let d = detailed(&[("Flags", "0".into()), ("CreateIndex", "5".into())]);
        assert_eq!(d, "Flags            0\nCreateIndex      5\n");
    }
}
