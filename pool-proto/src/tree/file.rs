//! Tree files: the TOML form of a supervision tree (DESIGN.md
//! "Supervision") parsed into a [`TreeSpec`] and validated, with errors that
//! name the file, the line and column, and the field; and the way back,
//! [`tree_to_toml`].
//!
//! Parsing goes in three passes, so that nothing half-checked escapes:
//!
//! 1. TOML syntax, through `toml`'s spanned document ([`DeTable`]);
//! 2. shape: a hand-written walk that knows every field, its type and its
//!    allowed values, remembering where each field was written;
//! 3. meaning: [`validate_tree`] (the same rules the supervisor applies to
//!    specs built in code), then every worker's function against the
//!    caller's registry.
//!
//! The walk is hand-written rather than `serde` so that an error knows the
//! dotted path of its field (`supervisor.children[1].shutdown`) and the span
//! of the value, which serde's errors do not carry.
//!
//! A tree file is stricter than the serde form of [`TreeSpec`] in one way:
//! a duration must be a string with a unit. A bare number is refused because
//! OTP's `period` is in seconds and its `shutdown` in milliseconds; a bare
//! `10` would silently mean one thing or the other.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::Path;

use serde_json::Value;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::spec::{
    AutoShutdown, ChildSpecData, Placement, Restart, Shutdown, Strategy, SupervisorSpec, TreeSpec,
};
use super::validate::{SpecError, validate_tree};
use crate::duration::{Dur, parse_duration};

/// The fields of the top level of a tree file.
const FILE_FIELDS: &[&str] = &["supervisor"];
/// The fields of a `[supervisor]` table (root or nested).
const SUPERVISOR_FIELDS: &[&str] = &[
    "id",
    "strategy",
    "intensity",
    "period",
    "auto_shutdown",
    "children",
];
/// The fields of one child entry.
const CHILD_FIELDS: &[&str] = &[
    "id",
    "function",
    "args",
    "supervisor",
    "restart",
    "shutdown",
    "significant",
    "placement",
    "sandbox",
];
/// The keys of a placement table; exactly one is given.
const PLACEMENT_FIELDS: &[&str] = &["node", "key", "label"];

/// Reads and parses the tree file at `path`; see [`parse_tree_str`].
///
/// `known_function` says whether a worker function name is registered on the
/// worker nodes; a child naming any other function is refused.
pub fn parse_tree_file(
    path: &Path,
    known_function: impl Fn(&str) -> bool,
) -> Result<TreeSpec, TreeFileError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| TreeFileError {
        file: file.clone(),
        position: None,
        field: String::new(),
        problem: Problem::Unreadable(source),
    })?;
    parse_tree_str(&file, &text, known_function)
}

/// Parses and validates the text of a tree file. `source_name` is the file
/// name used in errors.
///
/// Returns the whole tree or the first error found; nothing partially parsed
/// is ever returned. Defaults are left as `TreeSpec` represents them (a
/// missing `shutdown` stays `None`, a missing nested `id` stays empty).
///
/// ```
/// use pool_proto::Strategy;
/// use pool_proto::tree::parse_tree_str;
///
/// let text = r#"
/// [supervisor]
/// id = "ingest"
/// strategy = "rest_for_one"
///
/// [[supervisor.children]]
/// id = "parser"
/// function = "builtin.echo"
/// "#;
/// let tree = parse_tree_str("ingest.toml", text, |f| f.starts_with("builtin.")).unwrap();
/// assert_eq!(tree.supervisor.strategy, Strategy::RestForOne);
/// assert_eq!(tree.supervisor.children[0].function.as_deref(), Some("builtin.echo"));
///
/// let err = parse_tree_str("ingest.toml", &text.replace("echo", "ecoh"), |f| f == "builtin.echo")
///     .unwrap_err();
/// assert_eq!(err.field, "supervisor.children[0].function");
/// assert_eq!(err.position.unwrap().line, 8);
/// ```
pub fn parse_tree_str(
    source_name: &str,
    text: &str,
    known_function: impl Fn(&str) -> bool,
) -> Result<TreeSpec, TreeFileError> {
    parse(text, &known_function).map_err(|e| e.into_error(source_name, text))
}

/// Writes a tree as TOML that [`parse_tree_str`] reads back to the same
/// [`TreeSpec`] (for `poolctl tree show` and for saving trees).
///
/// Fails only if `args` hold something TOML cannot write: a `null` anywhere
/// inside them (TOML has no null; a top-level null `args` is simply left
/// out).
///
/// ```
/// use pool_proto::{ChildSpecData, Strategy, SupervisorSpec, TreeSpec};
/// use pool_proto::tree::{parse_tree_str, tree_to_toml};
///
/// let mut root = SupervisorSpec::new("app", Strategy::OneForAll);
/// root.children.push(ChildSpecData::worker("w", "builtin.echo", serde_json::json!({"n": 1})));
/// let tree = TreeSpec { supervisor: root };
/// let text = tree_to_toml(&tree).unwrap();
/// assert_eq!(parse_tree_str("app.toml", &text, |_| true).unwrap(), tree);
/// ```
pub fn tree_to_toml(spec: &TreeSpec) -> Result<String, toml::ser::Error> {
    // Written by hand rather than with `toml::to_string`, which would put
    // every `args` and `placement` in a section of its own; here they stay
    // inline on their child, as people write them.
    let mut out = String::new();
    write_supervisor(&mut out, "supervisor", &spec.supervisor)?;
    Ok(out)
}

/// Writes `[path]` with the supervisor's flags, then its children as
/// `[[path.children]]`, a nested supervisor as `[path.children.supervisor]`
/// right after its child's fields (it then belongs to that array element).
fn write_supervisor(
    out: &mut String,
    path: &str,
    sup: &SupervisorSpec,
) -> Result<(), toml::ser::Error> {
    use std::fmt::Write as _;
    // `fmt::Write` into a String cannot fail.
    let line = |out: &mut String, key: &str, value: String| {
        let _ = writeln!(out, "{key} = {value}");
    };
    let _ = writeln!(out, "[{path}]");
    if !sup.id.is_empty() {
        line(out, "id", inline(&sup.id)?);
    }
    line(out, "strategy", inline(&sup.strategy)?);
    line(out, "intensity", inline(&sup.intensity)?);
    line(out, "period", inline(&sup.period)?);
    line(out, "auto_shutdown", inline(&sup.auto_shutdown)?);
    for child in &sup.children {
        let _ = writeln!(out, "\n[[{path}.children]]");
        line(out, "id", inline(&child.id)?);
        if let Some(f) = &child.function {
            line(out, "function", inline(f)?);
        }
        if !child.args.is_null() {
            line(out, "args", inline(&child.args)?);
        }
        line(out, "restart", inline(&child.restart)?);
        if let Some(s) = &child.shutdown {
            line(out, "shutdown", inline(s)?);
        }
        if child.significant {
            line(out, "significant", "true".to_owned());
        }
        if let Some(p) = &child.placement {
            line(out, "placement", inline(p)?);
        }
        if let Some(s) = &child.sandbox {
            line(out, "sandbox", inline(s)?);
        }
        if let Some(nested) = &child.supervisor {
            out.push('\n');
            write_supervisor(out, &format!("{path}.children.supervisor"), nested)?;
        }
    }
    Ok(())
}

/// A value in TOML's inline form (`"text"`, `{ node = "w2" }`, `[1, 2]`).
fn inline<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, toml::ser::Error> {
    let mut s = String::new();
    value.serialize(toml::ser::ValueSerializer::new(&mut s))?;
    Ok(s)
}

/// A tree file that was refused: where, which field, and what is wrong.
///
/// Printed on one line, `FILE:LINE:COLUMN: FIELD: PROBLEM`, for example
/// `ingest.toml:9:12: supervisor.children[0].shutdown: invalid shutdown
/// "soon": use "brutal_kill", "infinity" or a duration with a unit such as
/// "5s" or "500ms"`.
#[derive(Debug, thiserror::Error)]
pub struct TreeFileError {
    /// The file (its path, or the source name given to [`parse_tree_str`]).
    pub file: String,
    /// Where in the file; `None` when the file could not be read.
    pub position: Option<Position>,
    /// The dotted path of the offending field, e.g.
    /// `supervisor.children[1].shutdown`; empty for errors that belong to no
    /// field (unreadable file, TOML syntax).
    pub field: String,
    /// What is wrong and what to do.
    #[source]
    pub problem: Problem,
}

impl fmt::Display for TreeFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(p) = self.position {
            write!(f, ":{}:{}", p.line, p.column)?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.problem)
    }
}

/// A place in a file: 1-based line and column (the column counts
/// characters, not bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Position {
    /// The line, from 1.
    pub line: u32,
    /// The column, from 1.
    pub column: u32,
}

impl Position {
    /// The position of byte `offset` in `text` (clamped to the text).
    fn at(text: &str, offset: usize) -> Self {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        // u32 keeps the error small; saturate rather than wrap on absurd files.
        let to_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Position {
            line: to_u32(before.matches('\n').count() + 1),
            column: to_u32(before[line_start..].chars().count() + 1),
        }
    }
}

/// What is wrong with a tree file, and what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The file could not be read.
    #[error("cannot read the tree file: {0}; check the path and that the file is readable")]
    Unreadable(#[source] std::io::Error),

    /// The text is not valid TOML.
    #[error("invalid TOML: {message}; fix the syntax at this position")]
    Syntax {
        /// The TOML parser's message.
        message: String,
    },

    /// The file has no `[supervisor]` table.
    #[error(
        "no [supervisor] table: a tree file describes one root supervisor; start it with `[supervisor]` and an `id`"
    )]
    MissingSupervisor,

    /// A field that does not exist at this place.
    #[error(
        "unknown field `{name}`{}; the fields here are {}",
        suggest(name, expected).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default(),
        expected.join(", ")
    )]
    UnknownField {
        /// The field as written.
        name: String,
        /// The fields allowed here.
        expected: &'static [&'static str],
    },

    /// A value of the wrong TOML type.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What the field takes.
        expected: &'static str,
        /// The TOML type written.
        found: &'static str,
    },

    /// A strategy name that does not exist.
    #[error(
        "unknown strategy {value:?}: use \"one_for_one\", \"one_for_all\", \"rest_for_one\" or \"simple_one_for_one\""
    )]
    UnknownStrategy {
        /// The value written.
        value: String,
    },

    /// A restart type that does not exist.
    #[error("unknown restart type {value:?}: use \"permanent\", \"transient\" or \"temporary\"")]
    UnknownRestart {
        /// The value written.
        value: String,
    },

    /// An auto_shutdown value that does not exist.
    #[error(
        "unknown auto_shutdown {value:?}: use \"never\", \"any_significant\" or \"all_significant\""
    )]
    UnknownAutoShutdown {
        /// The value written.
        value: String,
    },

    /// An intensity that is not a whole number >= 0.
    #[error(
        "invalid intensity {value}: use a whole number >= 0 (how many restarts are allowed within `period`)"
    )]
    BadIntensity {
        /// The value written, as TOML text.
        value: String,
    },

    /// A duration that does not parse.
    #[error(
        "invalid duration {value}: use a string with a unit, such as \"500ms\", \"10s\" or \"1m\""
    )]
    BadDuration {
        /// The value written, as TOML text.
        value: String,
    },

    /// A duration written as a bare number.
    #[error(
        "the duration {value} has no unit (OTP counts a period in seconds and a shutdown in milliseconds): write it as a string with a unit, such as \"{value}s\" or \"{value}ms\""
    )]
    DurationWithoutUnit {
        /// The number written.
        value: String,
    },

    /// A shutdown that is neither `brutal_kill`, `infinity` nor a duration.
    #[error(
        "invalid shutdown {value}: use \"brutal_kill\", \"infinity\" or a duration with a unit such as \"5s\" or \"500ms\""
    )]
    BadShutdown {
        /// The value written, as TOML text.
        value: String,
    },

    /// A placement that is none of the allowed forms.
    #[error(
        "invalid placement {value}: {why}; use \"local\", \"least-loaded\", {{ node = \"w2\" }}, {{ key = \"user:42\" }} or {{ label = \"zone=a\" }}"
    )]
    BadPlacement {
        /// The value written, as TOML text.
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },

    /// `args` hold a value JSON cannot carry.
    #[error("invalid args value {value}: {why}")]
    BadArgs {
        /// The value written, as TOML text.
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },

    /// A `sandbox` that is not a sandbox table.
    #[error(
        "invalid sandbox {value}: {why}; write it as {{ fuel = 1000000, memory = \"64MiB\", dirs = [{{ host = \"/srv/data\", guest = \"/data\", write = false }}], env = {{ KEY = \"value\" }} }}"
    )]
    BadSandbox {
        /// The value written, as TOML text.
        value: String,
        /// What is wrong with it.
        why: String,
    },

    /// A worker function that is not registered.
    #[error(
        "unknown function {name:?}: no worker node registers it; check the spelling, or register it in your worker build (the stock worker has builtin.echo, builtin.sleep, builtin.busy, builtin.crash and builtin.counter)"
    )]
    UnknownFunction {
        /// The function name written.
        name: String,
    },

    /// The tree is well formed but cannot be started (ids, combinations,
    /// simple_one_for_one rules).
    #[error(transparent)]
    Spec(Box<SpecError>),
}

/// An error found while parsing, before it knows the file name: a byte span
/// in the text, a field path and the problem.
struct Located {
    span: Range<usize>,
    field: String,
    problem: Problem,
}

impl Located {
    fn new(span: Range<usize>, field: impl Into<String>, problem: Problem) -> Self {
        Located {
            span,
            field: field.into(),
            problem,
        }
    }

    fn into_error(self, file: &str, text: &str) -> TreeFileError {
        TreeFileError {
            file: file.to_owned(),
            position: Some(Position::at(text, self.span.start)),
            field: self.field,
            problem: self.problem,
        }
    }
}

type Parsed<T> = Result<T, Located>;

fn parse(text: &str, known_function: &dyn Fn(&str) -> bool) -> Parsed<TreeSpec> {
    // Pass 1: syntax.
    let doc = DeTable::parse(text).map_err(|e| {
        Located::new(
            e.span().unwrap_or(0..0),
            "",
            Problem::Syntax {
                message: e.message().to_owned(),
            },
        )
    })?;

    // Pass 2: shape.
    let mut walk = Walk::default();
    let mut supervisor = None;
    for (key, value) in entries(doc.get_ref()) {
        match key.get_ref().as_ref() {
            "supervisor" => {
                walk.note("supervisor", value.span());
                let table = expect_table(value, "supervisor", "a table ([supervisor])")?;
                supervisor = Some(walk.supervisor("supervisor", table)?);
            }
            other => return Err(unknown_field(key, "", other, FILE_FIELDS)),
        }
    }
    let supervisor =
        supervisor.ok_or_else(|| Located::new(0..0, "supervisor", Problem::MissingSupervisor))?;
    let tree = TreeSpec { supervisor };

    // Pass 3: meaning, then the function registry.
    validate_tree(&tree).map_err(|e| {
        let field = format!("supervisor.{}", e.field());
        Located::new(walk.span_of(&field), field, Problem::Spec(Box::new(e)))
    })?;
    for (field, name) in &walk.functions {
        if !known_function(name) {
            return Err(Located::new(
                walk.span_of(field),
                field.clone(),
                Problem::UnknownFunction { name: name.clone() },
            ));
        }
    }
    Ok(tree)
}

/// State of the shape pass: where each field was written, for errors found
/// later, and the functions named, for the registry check.
#[derive(Default)]
struct Walk {
    /// Field path → span of its value (for a table: its header or braces).
    spans: HashMap<String, Range<usize>>,
    /// (field path, function name) of every worker child, in file order.
    functions: Vec<(String, String)>,
}

impl Walk {
    fn note(&mut self, path: &str, span: Range<usize>) {
        self.spans.insert(path.to_owned(), span);
    }

    /// The span of `path`, or of its nearest recorded ancestor (a missing
    /// field is reported at the table that lacks it).
    fn span_of(&self, path: &str) -> Range<usize> {
        let mut p = path;
        loop {
            if let Some(s) = self.spans.get(p) {
                return s.clone();
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return 0..0,
            }
        }
    }

    fn supervisor(&mut self, path: &str, table: &DeTable<'_>) -> Parsed<SupervisorSpec> {
        let mut spec = SupervisorSpec::new("", Strategy::OneForOne);
        for (key, value) in entries(table) {
            let name = key.get_ref().as_ref();
            let field = format!("{path}.{name}");
            self.note(&field, value.span());
            match name {
                "id" => spec.id = expect_str(value, &field, "a string")?.to_owned(),
                "strategy" => spec.strategy = parse_strategy(value, &field)?,
                "intensity" => spec.intensity = parse_intensity(value, &field)?,
                "period" => spec.period = Dur(parse_dur(value, &field)?),
                "auto_shutdown" => spec.auto_shutdown = parse_auto_shutdown(value, &field)?,
                "children" => {
                    let array = match value.get_ref() {
                        DeValue::Array(a) => a,
                        other => {
                            return Err(wrong_type(
                                value,
                                &field,
                                "an array of tables ([[...children]])",
                                other,
                            ));
                        }
                    };
                    for (i, item) in array.iter().enumerate() {
                        let child_path = format!("{field}[{i}]");
                        self.note(&child_path, item.span());
                        let t = expect_table(item, &child_path, "a table (one child)")?;
                        spec.children.push(self.child(&child_path, t)?);
                    }
                }
                other => return Err(unknown_field(key, path, other, SUPERVISOR_FIELDS)),
            }
        }
        Ok(spec)
    }

    fn child(&mut self, path: &str, table: &DeTable<'_>) -> Parsed<ChildSpecData> {
        let mut child = ChildSpecData::worker("", "", Value::Null);
        child.function = None;
        for (key, value) in entries(table) {
            let name = key.get_ref().as_ref();
            let field = format!("{path}.{name}");
            self.note(&field, value.span());
            match name {
                "id" => child.id = expect_str(value, &field, "a string")?.to_owned(),
                "function" => {
                    let f = expect_str(value, &field, "a string (a registered function name)")?;
                    self.functions.push((field.clone(), f.to_owned()));
                    child.function = Some(f.to_owned());
                }
                "args" => child.args = to_json(value, &field)?,
                "supervisor" => {
                    let t = expect_table(value, &field, "a table (a nested supervisor)")?;
                    child.supervisor = Some(self.supervisor(&field, t)?);
                }
                "restart" => child.restart = parse_restart(value, &field)?,
                "shutdown" => child.shutdown = Some(parse_shutdown(value, &field)?),
                "significant" => match value.get_ref() {
                    DeValue::Boolean(b) => child.significant = *b,
                    other => return Err(wrong_type(value, &field, "true or false", other)),
                },
                "placement" => child.placement = Some(self.placement(value, &field)?),
                "sandbox" => child.sandbox = Some(Box::new(parse_sandbox(value, &field)?)),
                other => return Err(unknown_field(key, path, other, CHILD_FIELDS)),
            }
        }
        Ok(child)
    }

    fn placement(&mut self, value: &Spanned<DeValue<'_>>, field: &str) -> Parsed<Placement> {
        let bad = |why| {
            Located::new(
                value.span(),
                field,
                Problem::BadPlacement {
                    value: toml_text(value.get_ref()),
                    why,
                },
            )
        };
        let table = match value.get_ref() {
            DeValue::String(s) => {
                return match s.as_ref() {
                    "local" => Ok(Placement::Local),
                    "least-loaded" => Ok(Placement::LeastLoaded),
                    _ => Err(bad("unknown placement name")),
                };
            }
            DeValue::Table(t) => t,
            _ => return Err(bad("a placement is a string or a one-key table")),
        };
        let mut found = None;
        for (key, v) in entries(table) {
            let name = key.get_ref().as_ref();
            let sub = format!("{field}.{name}");
            self.note(&sub, v.span());
            if !PLACEMENT_FIELDS.contains(&name) {
                return Err(unknown_field(key, field, name, PLACEMENT_FIELDS));
            }
            if found.is_some() {
                return Err(bad("give exactly one of node, key or label"));
            }
            let text = expect_str(v, &sub, "a string")?.trim().to_owned();
            let inner_bad = |why| {
                Located::new(
                    v.span(),
                    sub.clone(),
                    Problem::BadPlacement {
                        value: toml_text(value.get_ref()),
                        why,
                    },
                )
            };
            if text.is_empty() {
                return Err(inner_bad("the value is empty"));
            }
            found = Some(match name {
                "node" => Placement::Node(text),
                "key" => Placement::Key(text),
                _ => {
                    // Refuse now what the master could not match later.
                    match crate::message::LabelReq::parse_list(&text) {
                        Ok(list) if !list.is_empty() => Placement::Label(text),
                        _ => {
                            return Err(inner_bad(
                                "a label constraint is key=value, e.g. zone=a or zone=a,disk=ssd",
                            ));
                        }
                    }
                }
            });
        }
        found.ok_or_else(|| bad("the table is empty"))
    }
}

/// A table's entries in the order they were written: `DeTable` sorts its
/// keys, and errors should come in file order.
fn entries<'t, 'i>(
    table: &'t DeTable<'i>,
) -> Vec<(
    &'t Spanned<std::borrow::Cow<'i, str>>,
    &'t Spanned<DeValue<'i>>,
)> {
    let mut v: Vec<_> = table.iter().collect();
    v.sort_by_key(|(k, _)| k.span().start);
    v
}

fn unknown_field(
    key: &Spanned<std::borrow::Cow<'_, str>>,
    parent: &str,
    name: &str,
    expected: &'static [&'static str],
) -> Located {
    let field = if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    };
    Located::new(
        key.span(),
        field,
        Problem::UnknownField {
            name: name.to_owned(),
            expected,
        },
    )
}

/// The allowed name closest to a misspelt one, if it is close (at most two
/// edits, or the same letters in another case or with `-` for `_`).
fn suggest(name: &str, expected: &'static [&'static str]) -> Option<&'static str> {
    let norm = name.to_ascii_lowercase().replace('-', "_");
    expected
        .iter()
        .map(|&e| (edit_distance(&norm, e), e))
        .filter(|&(d, _)| d <= 2)
        .min_by_key(|&(d, _)| d)
        .map(|(_, e)| e)
}

/// Levenshtein distance, for [`suggest`]; names here are a few characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

fn wrong_type(
    value: &Spanned<DeValue<'_>>,
    field: &str,
    expected: &'static str,
    found: &DeValue<'_>,
) -> Located {
    Located::new(
        value.span(),
        field,
        Problem::WrongType {
            expected,
            found: type_name(found),
        },
    )
}

fn expect_str<'v>(
    value: &'v Spanned<DeValue<'_>>,
    field: &str,
    expected: &'static str,
) -> Parsed<&'v str> {
    match value.get_ref() {
        DeValue::String(s) => Ok(s.as_ref()),
        other => Err(wrong_type(value, field, expected, other)),
    }
}

fn expect_table<'v, 'i>(
    value: &'v Spanned<DeValue<'i>>,
    field: &str,
    expected: &'static str,
) -> Parsed<&'v DeTable<'i>> {
    match value.get_ref() {
        DeValue::Table(t) => Ok(t),
        other => Err(wrong_type(value, field, expected, other)),
    }
}

/// A value as it would be written in TOML, for messages.
fn toml_text(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => format!("{:?}", s.as_ref()),
        DeValue::Integer(i) => i.to_string(),
        DeValue::Float(f) => f.to_string(),
        DeValue::Boolean(b) => b.to_string(),
        DeValue::Datetime(d) => d.to_string(),
        DeValue::Array(_) => "(an array)".to_owned(),
        DeValue::Table(t) => {
            let inner: Vec<String> = entries(t)
                .into_iter()
                .map(|(k, v)| format!("{} = {}", k.get_ref(), toml_text(v.get_ref())))
                .collect();
            format!("{{ {} }}", inner.join(", "))
        }
    }
}

/// An enum field given as one of a fixed set of strings.
fn parse_named<T: Copy>(
    value: &Spanned<DeValue<'_>>,
    field: &str,
    names: &[(&str, T)],
    unknown: impl FnOnce(String) -> Problem,
) -> Parsed<T> {
    let text = match value.get_ref() {
        DeValue::String(s) => s.as_ref().to_owned(),
        other => toml_text(other),
    };
    names
        .iter()
        .find(|(n, _)| *n == text)
        .map(|&(_, t)| t)
        .ok_or_else(|| Located::new(value.span(), field, unknown(text)))
}

fn parse_strategy(value: &Spanned<DeValue<'_>>, field: &str) -> Parsed<Strategy> {
    let names = [
        Strategy::OneForOne,
        Strategy::OneForAll,
        Strategy::RestForOne,
        Strategy::SimpleOneForOne,
    ]
    .map(|s| (s.as_str(), s));
    parse_named(value, field, &names, |value| Problem::UnknownStrategy {
        value,
    })
}

fn parse_restart(value: &Spanned<DeValue<'_>>, field: &str) -> Parsed<Restart> {
    let names = [
        ("permanent", Restart::Permanent),
        ("transient", Restart::Transient),
        ("temporary", Restart::Temporary),
    ];
    parse_named(value, field, &names, |value| Problem::UnknownRestart {
        value,
    })
}

fn parse_auto_shutdown(value: &Spanned<DeValue<'_>>, field: &str) -> Parsed<AutoShutdown> {
    let names = [
        ("never", AutoShutdown::Never),
        ("any_significant", AutoShutdown::AnySignificant),
        ("all_significant", AutoShutdown::AllSignificant),
    ];
    parse_named(value, field, &names, |value| Problem::UnknownAutoShutdown {
        value,
    })
}

fn integer(v: &toml::de::DeInteger<'_>) -> Option<i128> {
    i128::from_str_radix(v.as_str(), v.radix()).ok()
}

/// A negative integer gets the plain "invalid" message: suggesting a unit
/// for it would not help.
fn is_negative(v: &toml::de::DeInteger<'_>) -> bool {
    v.as_str().starts_with('-')
}

fn parse_intensity(value: &Spanned<DeValue<'_>>, field: &str) -> Parsed<u32> {
    let n = match value.get_ref() {
        DeValue::Integer(i) => integer(i).and_then(|n| u32::try_from(n).ok()),
        _ => None,
    };
    n.ok_or_else(|| {
        Located::new(
            value.span(),
            field,
            Problem::BadIntensity {
                value: toml_text(value.get_ref()),
            },
        )
    })
}

fn parse_dur(value: &Spanned<DeValue<'_>>, field: &str) -> Parsed<std::time::Duration> {
    match value.get_ref() {
        DeValue::String(s) => parse_duration(s).map_err(|_| {
            Located::new(
                value.span(),
                field,
                Problem::BadDuration {
                    value: toml_text(value.get_ref()),
                },
            )
        }),
        DeValue::Integer(i) if !is_negative(i) => Err(Located::new(
            value.span(),
            field,
            Problem::DurationWithoutUnit {
                value: i.to_string(),
            },
        )),
        other => Err(Located::new(
            value.span(),
            field,
            Problem::BadDuration {
                value: toml_text(other),
            },
        )),
    }
}

fn parse_shutdown(value: &Spanned<DeValue<'_>>, field: &str) -> Parsed<Shutdown> {
    match value.get_ref() {
        DeValue::String(s) => s.parse::<Shutdown>().map_err(|_| {
            Located::new(
                value.span(),
                field,
                Problem::BadShutdown {
                    value: toml_text(value.get_ref()),
                },
            )
        }),
        DeValue::Integer(i) if !is_negative(i) => Err(Located::new(
            value.span(),
            field,
            Problem::DurationWithoutUnit {
                value: i.to_string(),
            },
        )),
        other => Err(Located::new(
            value.span(),
            field,
            Problem::BadShutdown {
                value: toml_text(other),
            },
        )),
    }
}

/// `args` as the JSON value handed to the function. TOML datetimes become
/// their text; floats that JSON cannot carry (inf, nan) are refused.
/// A child's `sandbox` table: `memory` may be a size (`"64MiB"`) and `env`
/// a table of strings, as people write them, or the wire's own forms.
fn parse_sandbox(value: &Spanned<DeValue<'_>>, field: &str) -> Parsed<crate::sandbox::Sandbox> {
    let bad = |why: String| {
        Located::new(
            value.span(),
            field,
            Problem::BadSandbox {
                value: toml_text(value.get_ref()),
                why,
            },
        )
    };
    let mut json = to_json(value, field)?;
    let Some(obj) = json.as_object_mut() else {
        return Err(bad("a sandbox is a table".to_owned()));
    };
    if let Some(Value::String(size)) = obj.get("memory") {
        let bytes = crate::size::parse_size(size).map_err(|e| bad(e.to_string()))?;
        obj.insert("memory".to_owned(), Value::from(bytes));
    }
    if let Some(Value::Object(env)) = obj.get("env") {
        let pairs: Vec<Value> = env
            .iter()
            .map(|(k, v)| Value::Array(vec![Value::String(k.clone()), v.clone()]))
            .collect();
        obj.insert("env".to_owned(), Value::Array(pairs));
    }
    serde_json::from_value(json).map_err(|e| bad(e.to_string()))
}

fn to_json(value: &Spanned<DeValue<'_>>, field: &str) -> Parsed<Value> {
    let bad = |why| {
        Located::new(
            value.span(),
            field,
            Problem::BadArgs {
                value: toml_text(value.get_ref()),
                why,
            },
        )
    };
    Ok(match value.get_ref() {
        DeValue::String(s) => Value::String(s.as_ref().to_owned()),
        DeValue::Integer(i) => integer(i)
            .and_then(|n| i64::try_from(n).ok())
            .map(Value::from)
            .ok_or_else(|| bad("the integer does not fit in 64 bits"))?,
        DeValue::Float(f) => f
            .as_str()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| bad("inf and nan cannot be passed as arguments"))?,
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::String(d.to_string()),
        DeValue::Array(a) => Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, item)| to_json(item, &format!("{field}[{i}]")))
                .collect::<Parsed<_>>()?,
        ),
        DeValue::Table(t) => Value::Object(
            entries(t)
                .into_iter()
                .map(|(k, v)| {
                    let key = k.get_ref().as_ref().to_owned();
                    let sub = to_json(v, &format!("{field}.{key}"))?;
                    Ok((key, sub))
                })
                .collect::<Parsed<_>>()?,
        ),
    })
}
