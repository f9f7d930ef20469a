//! The shape of `src/`: layers that point one way, files you can see across, functions
//! that fit on a screen. `docs/architecture.md` ("Checking the layers") explains the rules.
//!
//! The test reads every source file of the library as text, finds each path that names a
//! module of the crate (`use crate::…`, `use super::…`, `self::…`, and inline
//! `crate::x::f()`), and builds the graph of module-to-module arrows. Comments, string
//! literals and `#[cfg(test)]` code do not count: they do not make one module depend on
//! another when the crate is built.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules from the bottom layer up. A module may use only modules of a
/// lower layer; two modules of one layer do not use each other.
const LAYERS: &[&[&str]] = &[
    &["calendar"],
    &["domain"],
    &["config"],
    &["topology"],
    &["wire", "state_dir"],
    &["link"],
    &["raft", "sim", "connector"],
    &["cli"],
    &["node"],
    &["rpc", "rest", "ssh"],
    &["status"],
    &["server"],
    &["launcher"],
    &["harness"],
    &["commands"],
];

/// A source file longer than this holds several jobs.
const MAX_FILE_LINES: usize = 1_200;
/// A function longer than this does several things.
const MAX_FUNCTION_LINES: usize = 80;

/// One library source file: its module path (`cli::session`) and its text.
struct Source {
    path: PathBuf,
    module: Vec<String>,
    text: String,
}

#[test]
fn modules_form_layers_that_point_one_way() {
    let sources = library_sources();
    let modules: BTreeSet<Vec<String>> = sources.iter().map(|s| s.module.clone()).collect();
    let mut problems = Vec::new();
    let mut arrows: BTreeMap<Vec<String>, BTreeSet<(String, String)>> = BTreeMap::new();
    for source in &sources {
        let code = strip_tests(&strip_comments_and_strings(&source.text));
        for target in references(&code, &source.module) {
            let Some(target) = longest_module(&modules, &target) else {
                continue;
            };
            let Some((parent, from, to)) = siblings(&source.module, &target) else {
                continue;
            };
            if parent.is_empty()
                && let Some(problem) = layer_problem(&from, &to)
            {
                problems.push(format!("{}: {problem}", source.path.display()));
            }
            arrows.entry(parent).or_default().insert((from, to));
        }
    }
    for (parent, edges) in &arrows {
        if let Some(cycle) = find_cycle(edges) {
            let place = if parent.is_empty() {
                "crate".to_owned()
            } else {
                parent.join("::")
            };
            problems.push(format!("import cycle in {place}: {}", cycle.join(" -> ")));
        }
    }
    assert!(
        problems.is_empty(),
        "the layers of src/ are crossed:\n{}",
        problems.join("\n")
    );
}

#[test]
fn files_and_functions_stay_small() {
    let mut problems = Vec::new();
    for source in library_sources() {
        let lines = source.text.lines().count();
        if lines > MAX_FILE_LINES {
            problems.push(format!(
                "{} has {lines} lines (at most {MAX_FILE_LINES}): split it by job",
                source.path.display()
            ));
        }
        for (name, line, length) in long_functions(&source.text) {
            problems.push(format!(
                "{}:{line}: fn {name} has {length} lines (at most {MAX_FUNCTION_LINES})",
                source.path.display()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checks_see_what_they_should() {
    let code = strip_tests(&strip_comments_and_strings(
        "use crate::{a::B, c::{self, D}};\n// crate::commented\nlet s = \"crate::quoted\";\n\
         use super::e::F;\nfn g() { crate::h::i(); }\n#[cfg(test)]\nmod tests {\n    use crate::t;\n}\n",
    ));
    let module = vec!["x".to_owned(), "y".to_owned()];
    let found: BTreeSet<String> = references(&code, &module)
        .into_iter()
        .map(|p| p.join("::"))
        .collect();
    let expected = ["a::B", "c", "c::D", "x::e::F", "h::i"];
    assert_eq!(found, expected.iter().map(|s| s.to_string()).collect());
    let edges = BTreeSet::from([("a".to_owned(), "b".to_owned()), ("b".to_owned(), "a".to_owned())]);
    assert!(find_cycle(&edges).is_some());
    assert_eq!(layer_problem("node", "config"), None);
    assert!(layer_problem("config", "node").is_some());
    assert!(layer_problem("raft", "sim").is_some());
    let long = format!(
        "fn f() {{\n{}}}\nfn g() {{ }}\n",
        "    x();\n".repeat(MAX_FUNCTION_LINES)
    );
    assert_eq!(
        long_functions(&long),
        vec![("f".to_owned(), 1, MAX_FUNCTION_LINES + 2)]
    );
}

/// Every `.rs` file of the library below `src/` (the binary's `main.rs` aside), with the
/// files that only tests compile left out.
fn library_sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect_files(&root, &mut files);
    let mut sources: Vec<Source> = files
        .into_iter()
        .filter(|path| path != &root.join("main.rs"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("source files are readable");
            let module = module_path(&root, &path);
            let path = path
                .strip_prefix(env!("CARGO_MANIFEST_DIR"))
                .unwrap_or(&path)
                .to_owned();
            Source { path, module, text }
        })
        .collect();
    let test_only: BTreeSet<Vec<String>> = sources.iter().flat_map(test_only_children).collect();
    sources.retain(|source| !test_only.iter().any(|m| source.module.starts_with(m)));
    sources
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("directory entries are readable").path();
        if path.is_dir() {
            collect_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// `src/lib.rs` is the crate root, `src/a/mod.rs` and `src/a.rs` are `a`, `src/a/b.rs` is
/// `a::b`.
fn module_path(root: &Path, path: &Path) -> Vec<String> {
    let relative = path.strip_prefix(root).expect("files are below src/");
    let mut parts: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The modules that `source` declares behind `#[cfg(test)]`.
fn test_only_children(source: &Source) -> Vec<Vec<String>> {
    let lines: Vec<&str> = source.text.lines().map(str::trim).collect();
    lines
        .windows(2)
        .filter(|pair| pair[0] == "#[cfg(test)]")
        .filter_map(|pair| {
            let declaration = pair[1]
                .trim_start_matches("pub ")
                .trim_start_matches("pub(crate) ");
            let name = declaration.strip_prefix("mod ")?.strip_suffix(';')?;
            let mut module = source.module.clone();
            module.push(name.to_owned());
            Some(module)
        })
        .collect()
}

/// The text with comments and the contents of string and character literals blanked out,
/// line breaks kept.
fn strip_comments_and_strings(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    // Copies the line breaks of `chars[from..to]` (so line numbers stay) and moves past it.
    let skip = |out: &mut String, from: usize, to: usize| {
        out.extend(chars[from..to.min(chars.len())].iter().filter(|c| **c == '\n'));
        to
    };
    while i < chars.len() {
        let next = chars.get(i + 1).copied();
        i = match (chars[i], next) {
            ('/', Some('/')) => {
                let end = (i..chars.len())
                    .find(|&k| chars[k] == '\n')
                    .unwrap_or(chars.len());
                skip(&mut out, i, end)
            }
            ('/', Some('*')) => {
                let end = (i + 2..chars.len())
                    .find(|&k| chars[k - 1] == '*' && chars[k] == '/')
                    .map_or(chars.len(), |k| k + 1);
                skip(&mut out, i, end)
            }
            ('"', _) => {
                let mut k = i + 1;
                while k < chars.len() && chars[k] != '"' {
                    k += if chars[k] == '\\' { 2 } else { 1 };
                }
                out.push_str("\"\"");
                skip(&mut out, i, k + 1)
            }
            // A character literal: 'x' or an escape such as '\n' or '\''.
            ('\'', Some('\\')) => {
                let end = (i + 3..chars.len())
                    .find(|&k| chars[k] == '\'')
                    .map_or(chars.len(), |k| k + 1);
                out.push_str("' '");
                end
            }
            ('\'', Some(_)) if chars.get(i + 2) == Some(&'\'') => {
                out.push_str("' '");
                i + 3
            }
            (c, _) => {
                out.push(c);
                i + 1
            }
        };
    }
    out
}

/// The code without `#[cfg(test)]` items (the test module and anything else marked so).
fn strip_tests(code: &str) -> String {
    let mut out = String::new();
    let mut lines = code.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "#[cfg(test)]" {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let mut depth = 0i64;
        for item_line in lines.by_ref() {
            depth += item_line.matches('{').count() as i64 - item_line.matches('}').count() as i64;
            let ends = depth <= 0 && (item_line.contains('}') || item_line.trim_end().ends_with(';'));
            if ends {
                break;
            }
        }
    }
    out
}

/// Every crate path `code` of module `module` names, resolved from the crate root.
fn references(code: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let boundary = rest[..at]
            .chars()
            .last()
            .is_none_or(|c| !c.is_alphanumeric() && c != '_');
        let Some(end) = rest[at..].find(';') else { break };
        if boundary {
            let tree = rest[at + 4..at + end]
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            for path in expand_use(&tree) {
                found.extend(resolve(&path, module));
            }
            rest = &rest[at + end..];
        } else {
            rest = &rest[at + 4..];
        }
    }
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(start) {
            let at = from + at;
            from = at + start.len();
            let before = code[..at].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':' || c == '{' || c == ',') {
                continue;
            }
            let path: Vec<String> = code[at..]
                .split("::")
                .map_while(|segment| {
                    let ident: String = segment
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    (!ident.is_empty() && ident.len() == segment.len()).then_some(ident)
                })
                .collect();
            let last = code[at..].split("::").nth(path.len()).map(|s| {
                s.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect::<String>()
            });
            let mut path = path;
            if let Some(last) = last.filter(|l| !l.is_empty()) {
                path.push(last);
            }
            found.extend(resolve(&path, module));
        }
    }
    found.retain(|path| !path.is_empty());
    found
}

/// The paths of a `use` tree: `a::{b, c::{d, self}}` is `a::b`, `a::c::d` and `a::c`; a
/// renaming `as` is dropped.
fn expand_use(tree: &str) -> Vec<Vec<String>> {
    let segments = |path: &str| -> Vec<String> {
        path.split("::")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let tree = tree.trim().trim_start_matches("::");
    let Some(open) = tree.find('{') else {
        return vec![segments(tree.split(" as ").next().unwrap_or(tree))];
    };
    let prefix = segments(&tree[..open]);
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .flat_map(|part| {
            expand_use(part).into_iter().map(|tail| {
                let mut path = prefix.clone();
                path.extend(tail.into_iter().filter(|s| s != "self"));
                path
            })
        })
        .collect()
}

/// A path as seen from the crate root, if it starts at `crate`, `super` or `self`.
fn resolve(path: &[String], module: &[String]) -> Option<Vec<String>> {
    let (first, rest) = path.split_first()?;
    let mut base: Vec<String> = match first.as_str() {
        "crate" => Vec::new(),
        "self" => module.to_vec(),
        "super" => module[..module.len().checked_sub(1)?].to_vec(),
        _ => return None,
    };
    let mut rest = rest;
    while rest.first().is_some_and(|s| s == "super") {
        base.pop();
        rest = &rest[1..];
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The longest module of the crate that `path` starts with.
fn longest_module(modules: &BTreeSet<Vec<String>>, path: &[String]) -> Option<Vec<String>> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|prefix| modules.contains(prefix))
}

/// Where an arrow from `from` to `to` counts: the nearest module that contains both, and
/// the two children of it they lie in. `None` for an arrow within one module or between a
/// module and one that contains it (a parent declares and re-exports its children).
fn siblings(from: &[String], to: &[String]) -> Option<(Vec<String>, String, String)> {
    let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
    let (a, b) = (from.get(common)?, to.get(common)?);
    Some((from[..common].to_vec(), a.clone(), b.clone()))
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// What is wrong with a top-level module `from` using `to`, if anything.
fn layer_problem(from: &str, to: &str) -> Option<String> {
    let (Some(from_layer), Some(to_layer)) = (layer_of(from), layer_of(to)) else {
        return Some(format!(
            "{from} -> {to}: give every top-level module a layer in LAYERS"
        ));
    };
    match from_layer.cmp(&to_layer) {
        std::cmp::Ordering::Greater => None,
        std::cmp::Ordering::Equal => Some(format!(
            "{from} -> {to}: modules of one layer do not use each other"
        )),
        std::cmp::Ordering::Less => Some(format!("{from} -> {to}: an arrow pointing up the layers")),
    }
}

/// A cycle among `edges`, as the modules along it, if there is one.
fn find_cycle(edges: &BTreeSet<(String, String)>) -> Option<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in edges {
        next.entry(from).or_default().push(to);
    }
    fn visit<'a>(
        node: &'a str,
        next: &BTreeMap<&'a str, Vec<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| *n == node) {
            let mut cycle: Vec<String> = path[at..].iter().map(|s| s.to_string()).collect();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        for to in next.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(to, next, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    next.keys()
        .find_map(|start| visit(start, &next, &mut Vec::new(), &mut done))
}

/// Every function longer than [`MAX_FUNCTION_LINES`]: its name, first line and length,
/// from the `fn` line to its closing brace.
fn long_functions(text: &str) -> Vec<(String, usize, usize)> {
    let code = strip_comments_and_strings(text);
    let lines: Vec<&str> = code.lines().collect();
    let mut long = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let Some(name) = function_name(line) else { continue };
        let mut depth = 0i64;
        let mut opened = false;
        for (offset, body_line) in lines[start..].iter().enumerate() {
            for c in body_line.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            if !opened && body_line.trim_end().ends_with(';') {
                break;
            }
            if opened && depth <= 0 {
                let length = offset + 1;
                if length > MAX_FUNCTION_LINES {
                    long.push((name, start + 1, length));
                }
                break;
            }
        }
    }
    long
}

/// The name of the function a line declares, if it declares one.
fn function_name(line: &str) -> Option<String> {
    let mut words = line.split_whitespace().peekable();
    while let Some(word) = words.next() {
        match word {
            "pub" | "async" | "const" | "unsafe" | "extern" => continue,
            w if w.starts_with("pub(") => continue,
            "fn" => {
                let name: String = words
                    .next()?
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                return (!name.is_empty()).then_some(name);
            }
            _ => return None,
        }
    }
    None
}
