//! The one rule for the names of submitted files, applied by the gateway (a 422 naming the
//! file) and again by the agent before it writes anything.
//!
//! A name is a plain relative path, compared as written: components separated by single `/`,
//! none empty, `.` or `..`, each at most 255 bytes and the whole at most 1024, with no control
//! or bidirectional-formatting characters and no backslash, and not starting with `-` or `@`
//! (compile commands name the files, and a compiler would read those as options). In a set of
//! files no name appears twice and no file is also another file's directory.

use std::collections::HashSet;

/// The longest component of a file name, in bytes.
pub const MAX_COMPONENT_BYTES: usize = 255;
/// The longest file name, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;

/// Characters that reorder how text is displayed (Trojan Source) or do not show at all: a name
/// shown to a person must read as it is.
fn is_bidirectional_formatting(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// Why one file name is refused, if it is.
pub fn file_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("must not be empty");
    }
    if name.len() > MAX_PATH_BYTES {
        return Some("must be at most 1024 bytes");
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == '\\' || is_bidirectional_formatting(c))
    {
        return Some(
            "must not contain control or bidirectional-formatting characters or backslashes",
        );
    }
    if name.starts_with(['-', '@']) {
        return Some("must not start with `-` or `@`");
    }
    for component in name.split('/') {
        if component.is_empty() || component == "." || component == ".." {
            return Some("must be a relative path without empty, `.` or `..` components");
        }
        if component.len() > MAX_COMPONENT_BYTES {
            return Some("must have components of at most 255 bytes");
        }
    }
    None
}

/// Problems of a whole set of (individually valid) names: the index of each name refused,
/// with why. A name given twice, or a name that is also a directory of another name.
pub fn file_set_problems<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Vec<(usize, &'static str)> {
    let names: Vec<&str> = names.into_iter().collect();
    let directories: HashSet<&str> = names
        .iter()
        .flat_map(|name| name.match_indices('/').map(|(at, _)| &name[..at]))
        .collect();
    let mut seen = HashSet::new();
    let mut problems = Vec::new();
    for (index, name) in names.iter().enumerate() {
        if !seen.insert(*name) {
            problems.push((index, "is given twice"));
        } else if directories.contains(name) {
            problems.push((index, "is also the directory of another file"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_names_pass() {
        for good in ["main.c", "lib/util.h", "a/b/c.py", "ünïcødé.py", "x.y.z"] {
            assert_eq!(file_name_problem(good), None, "{good:?}");
        }
        let long_component = "x".repeat(256);
        let long_path = ["y"; 600].join("/");
        for bad in [
            "",
            "/abs",
            "a/./b.c",
            "a//b.c",
            "a/b/.",
            "./a",
            "../a",
            "a/..",
            "dir/",
            "a\\b",
            "a\nb",
            "-o.c",
            "@opts",
            "evil\u{202E}cod.py",
            "a\u{2066}b",
            "zero\u{200B}width.c",
            "bom\u{FEFF}.c",
            &long_component,
            &long_path,
        ] {
            assert!(file_name_problem(bad).is_some(), "{bad:?} passed");
        }
    }

    #[test]
    fn a_set_has_no_duplicates_and_no_file_that_is_a_directory() {
        assert!(file_set_problems(["main.py", "lib/a.py", "lib/b.py"]).is_empty());
        assert_eq!(
            file_set_problems(["x", "x/y.py"]),
            vec![(0, "is also the directory of another file")]
        );
        assert_eq!(
            file_set_problems(["a/b/c.py", "a/b"]),
            vec![(1, "is also the directory of another file")]
        );
        assert_eq!(
            file_set_problems(["a.c", "b.c", "a.c"]),
            vec![(2, "is given twice")]
        );
    }
}
