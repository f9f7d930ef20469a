//! The reader core and the shape pass: it turns byte offsets into lines and columns,
//! collects every [`Problem`], and walks the parsed document against the schema of
//! [`super::file`], reporting unknown keys (with the closest valid one), wrongly typed
//! values and missing keys or tables. The rule files add their own `impl Reader` blocks.

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::file::{
    CONTRACT, ContractTable, DNS, DnsEntry, FORTICLOUD, ForticloudTable, Key, NESTED_SECTIONS, Read,
    SECTIONS, Section,
};
use super::names::fqdn_fault;
use super::spec::{Problem, Span};
use super::suggest::{SUGGESTED_EMS_IP, closest};

/// Walks one document and collects its problems.
pub(super) struct Reader<'t> {
    pub(super) text: &'t str,
    /// Byte offset at which each line starts.
    pub(super) line_starts: Vec<usize>,
    pub(super) problems: Vec<Problem>,
}

impl<'t> Reader<'t> {
    pub(super) fn new(text: &'t str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        Reader {
            text,
            line_starts,
            problems: Vec::new(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(super) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self.line_starts[line - 1];
        let column = self
            .text
            .get(start..offset)
            .map_or(1, |before| before.chars().count() + 1);
        (line, column)
    }

    pub(super) fn line(&self, span: &Span) -> usize {
        self.position(span.start).0
    }

    pub(super) fn report(&mut self, span: &Span, message: impl Into<String>, fix: impl Into<String>) {
        let (line, column) = self.position(span.start);
        self.problems.push(Problem {
            line,
            column,
            message: message.into(),
            fix: fix.into(),
        });
    }

    /// Byte offset of the first character on the line of `offset` that is not white space.
    pub(super) fn first_on_line(&self, offset: usize) -> usize {
        let line = self.line(&(offset..offset));
        let start = self.line_starts[line - 1];
        let indent = self.text[start..]
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .map(char::len_utf8)
            .sum::<usize>();
        start + indent
    }

    pub(super) fn top_level_keys(&mut self, document: &DeTable<'_>) {
        for key in document.keys() {
            let name = key.get_ref().as_ref();
            if SECTIONS.iter().any(|section| section.key == name) {
                continue;
            }
            let headers: Vec<String> = SECTIONS.iter().map(|section| section.header()).collect();
            let owners: Vec<String> = SECTIONS
                .iter()
                .filter(|section| section.keys.iter().any(|k| k.name == name))
                .map(|section| section.header())
                .collect();
            let fix = if let Some(nested) = NESTED_SECTIONS.iter().find(|section| section.key == name) {
                format!("write the header {} instead", nested.header())
            } else if !owners.is_empty() {
                format!(
                    "\"{name}\" belongs in {}; move it below that table's header",
                    owners.join(" or ")
                )
            } else if name.contains('.') && fqdn_fault(name).is_none() {
                format!(
                    "names to resolve belong in {}; move the line below that header",
                    DNS.header()
                )
            } else if let Some(section) = closest(name, SECTIONS.iter().map(|s| s.key))
                .and_then(|key| SECTIONS.iter().find(|s| s.key == key))
            {
                format!("did you mean {}?", section.header())
            } else {
                format!("the top level holds only the tables {}", headers.join(", "))
            };
            self.report(
                &key.span(),
                format!("unknown key \"{name}\" at the top level"),
                fix,
            );
        }
    }

    /// A single table such as `[fabric]`; `None` when it is absent or not a table.
    pub(super) fn one<T: DeserializeOwned + Default>(
        &mut self,
        document: &DeTable<'_>,
        section: &Section,
    ) -> Option<Read<T>> {
        let (header, table) = self.section_table(document, section)?;
        Some(self.table(section, header, table))
    }

    /// The span and contents of a single table; `None` when it is absent (reported when the
    /// section is required) or not a table (reported).
    pub(super) fn section_table<'d, 'i>(
        &mut self,
        document: &'d DeTable<'i>,
        section: &Section,
    ) -> Option<(Span, &'d DeTable<'i>)> {
        let Some((key, value)) = document.get_key_value(section.key) else {
            if section.required {
                self.missing_section(section);
            }
            return None;
        };
        match value.get_ref() {
            DeValue::Table(table) => Some((value.span(), table)),
            other => {
                self.report(
                    &key.span(),
                    format!(
                        "\"{}\" must be a table, found {}",
                        section.key,
                        article(other.type_str())
                    ),
                    format!("write the header {} and its keys below it", section.header()),
                );
                None
            }
        }
    }

    /// An array of tables such as `[[node]]`: empty when it is absent, `None` when it is
    /// not an array of tables (which is reported).
    pub(super) fn many<T: DeserializeOwned + Default>(
        &mut self,
        document: &DeTable<'_>,
        section: &Section,
    ) -> Option<Vec<Read<T>>> {
        let Some((key, value)) = document.get_key_value(section.key) else {
            if section.required {
                self.missing_section(section);
            }
            return Some(Vec::new());
        };
        let wrong_shape = |found: &DeValue<'_>| {
            (
                format!(
                    "\"{}\" must be an array of tables, found {}",
                    section.key,
                    article(found.type_str())
                ),
                format!("write {} above each entry (two brackets)", section.header()),
            )
        };
        let DeValue::Array(items) = value.get_ref() else {
            let (message, fix) = wrong_shape(value.get_ref());
            self.report(&key.span(), message, fix);
            return None;
        };
        let mut read = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::Table(table) => read.push(self.table(section, item.span(), table)),
                other => {
                    let (message, fix) = wrong_shape(other);
                    let span = if item.span().is_empty() {
                        key.span()
                    } else {
                        item.span()
                    };
                    self.report(&span, message, fix);
                }
            }
        }
        Some(read)
    }

    /// Reports a value of the number key `spec` that is no integer from `min` to `max`;
    /// true when it is one.
    fn check_number(
        &mut self,
        section: &Section,
        spec: &Key,
        (min, max): (u64, u64),
        value: &Spanned<DeValue<'_>>,
    ) -> bool {
        let fix = format!(
            "write a number from {min} to {max}, e.g. {} = {}",
            spec.name, spec.example
        );
        let DeValue::Integer(integer) = value.get_ref() else {
            self.report(
                &value.span(),
                format!(
                    "wrong value for \"{}\" in {}: found {}, expected a number from {min} to {max}",
                    spec.name,
                    section.header(),
                    article(value.get_ref().type_str())
                ),
                fix,
            );
            return false;
        };
        let number = i128::from_str_radix(integer.as_str(), integer.radix()).ok();
        if number.is_some_and(|number| (i128::from(min)..=i128::from(max)).contains(&number)) {
            return true;
        }
        let written = self.text.get(value.span()).unwrap_or(integer.as_str()).trim();
        self.report(
            &value.span(),
            format!(
                "{} = {written} in {} is out of range ({min} to {max})",
                spec.name,
                section.header()
            ),
            fix,
        );
        false
    }

    pub(super) fn missing_section(&mut self, section: &Section) {
        let keys: Vec<String> = section
            .keys
            .iter()
            .filter(|key| key.required)
            .map(|key| format!("{} = {}", key.name, key.example))
            .collect();
        self.report(
            &(0..0),
            format!("missing table {}", section.header()),
            format!(
                "add the header {} with {} below it",
                section.header(),
                keys.join(" and ")
            ),
        );
    }

    /// Reads one table into `T`: unknown keys, wrongly typed values and missing required
    /// keys are each reported, and `T` holds every key that was fine.
    pub(super) fn table<T: DeserializeOwned + Default>(
        &mut self,
        section: &Section,
        header: Span,
        table: &DeTable<'_>,
    ) -> Read<T> {
        let mut accepted = DeTable::new();
        let mut rejected = Vec::new();
        for (key, value) in table.iter() {
            let name = key.get_ref().as_ref();
            let Some(spec) = section.keys.iter().find(|k| k.name == name) else {
                let fix = match closest(name, section.keys.iter().map(|k| k.name)) {
                    Some(closest) => format!("did you mean \"{closest}\"?"),
                    None => format!(
                        "valid keys in {}: {}",
                        section.header(),
                        section.keys.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
                    ),
                };
                self.report(
                    &key.span(),
                    format!("unknown key \"{name}\" in {}", section.header()),
                    fix,
                );
                continue;
            };
            if let Some(range) = spec.range
                && !self.check_number(section, spec, range, value)
            {
                rejected.push(spec.name);
                continue;
            }
            let alone: DeTable<'_> = std::iter::once((key.clone(), value.clone())).collect();
            match deserialize_table::<T>(alone, header.clone()) {
                Ok(_) => {
                    accepted.insert(key.clone(), value.clone());
                }
                Err(error) => {
                    rejected.push(spec.name);
                    self.report(
                        &value.span(),
                        format!(
                            "wrong value for \"{name}\" in {}: {}",
                            section.header(),
                            error.message()
                        ),
                        format!("write it like {} = {}", spec.name, spec.example),
                    );
                }
            }
        }
        for key in section.keys.iter().filter(|key| key.required) {
            if !table.contains_key(key.name) {
                self.report(
                    &header,
                    format!("missing key \"{}\" in {}", key.name, section.header()),
                    format!("add {} = {}", key.name, key.example),
                );
            }
        }
        let table = match deserialize_table::<T>(accepted, header.clone()) {
            Ok(table) => table,
            Err(error) => {
                self.report(
                    &header,
                    format!("cannot read {}: {}", section.header(), error.message()),
                    "check the values in this table",
                );
                T::default()
            }
        };
        Read {
            header,
            table,
            rejected,
        }
    }

    /// The entries of `[dns]` whose value is a string, in any order; none when the table is
    /// absent or not a table. A value of another type is reported, and so is a name that
    /// TOML split into nested tables because it was written without quotes.
    pub(super) fn dns(&mut self, document: &DeTable<'_>) -> Vec<DnsEntry> {
        let Some((_, table)) = self.section_table(document, &DNS) else {
            return Vec::new();
        };
        let mut entries = Vec::new();
        for (key, value) in table.iter() {
            let name = key.get_ref().as_ref();
            match value.get_ref() {
                DeValue::String(address) => entries.push(DnsEntry {
                    name: Spanned::new(key.span(), name.to_string()),
                    address: Spanned::new(value.span(), address.to_string()),
                }),
                DeValue::Table(nested) => {
                    let mut leaves = Vec::new();
                    dotted_leaves(name, key.span(), nested, &mut leaves);
                    for (dotted, key_span, value_span) in leaves {
                        let written = value_span
                            .and_then(|span| self.text.get(span))
                            .map_or_else(|| format!("\"{SUGGESTED_EMS_IP}\""), str::to_string);
                        let start = self.first_on_line(key_span.start);
                        self.report(
                            &(start..start),
                            format!(
                                "the name {dotted} in {} is not quoted, so TOML reads it as \
                                 nested tables split at the dots",
                                DNS.header()
                            ),
                            format!("quote the name: \"{dotted}\" = {written}"),
                        );
                    }
                }
                other => self.report(
                    &value.span(),
                    format!(
                        "wrong value for \"{name}\" in {}: found {}, expected an IPv4 address \
                         as a string",
                        DNS.header(),
                        article(other.type_str())
                    ),
                    format!("write it like \"{name}\" = \"{SUGGESTED_EMS_IP}\""),
                ),
            }
        }
        entries
    }

    /// `[forticloud]` and its `[[forticloud.contract]]` entries; `None` when the table is
    /// absent or not a table (which is reported).
    pub(super) fn forticloud(
        &mut self,
        document: &DeTable<'_>,
    ) -> Option<(Read<ForticloudTable>, Vec<Read<ContractTable>>)> {
        let (header, table) = self.section_table(document, &FORTICLOUD)?;
        let read = self.table::<ForticloudTable>(&FORTICLOUD, header, table);
        let contracts = self.many::<ContractTable>(table, &CONTRACT).unwrap_or_default();
        Some((read, contracts))
    }
}

/// Deserializes a table, keeping the spans of its values.
pub(super) fn deserialize_table<T: DeserializeOwned>(
    table: DeTable<'_>,
    span: Span,
) -> Result<T, toml::de::Error> {
    T::deserialize(ValueDeserializer::from(Spanned::new(span, DeValue::Table(table))))
}

/// "a string", "an integer": a TOML type name with its article.
pub(super) fn article(type_name: &str) -> String {
    match type_name.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => format!("an {type_name}"),
        _ => format!("a {type_name}"),
    }
}

/// Every value below a `[dns]` key that holds a table, as `(dotted name, key span, value
/// span)`: what `ems.lab.example = "..."` written without quotes turns into. An empty
/// table yields its own name without a value span.
pub(super) fn dotted_leaves(
    prefix: &str,
    span: Span,
    table: &DeTable<'_>,
    leaves: &mut Vec<(String, Span, Option<Span>)>,
) {
    if table.is_empty() {
        leaves.push((prefix.to_string(), span, None));
        return;
    }
    for (key, value) in table.iter() {
        let dotted = format!("{prefix}.{}", key.get_ref());
        match value.get_ref() {
            DeValue::Table(nested) => dotted_leaves(&dotted, key.span(), nested, leaves),
            _ => leaves.push((dotted, key.span(), Some(value.span()))),
        }
    }
}

/// The values of one string key over a list of tables, in file order, leaving out the
/// tables that lack it: every serial of the `[[node]]`s, say.
pub(super) fn written<'a>(values: impl Iterator<Item = &'a Option<Spanned<String>>>) -> Vec<&'a str> {
    values
        .filter_map(|value| value.as_ref())
        .map(|value| value.get_ref().as_str())
        .collect()
}
