//! The deployment files, checked without a Docker engine: `Dockerfile`, `.dockerignore`,
//! `docker-compose.yml` with `.env.example`, and `deploy/` (nginx, Odoo and systemd files,
//! the example settings, the container health probe).
//!
//! The files are parsed, and what a user would notice is checked: which service a URL
//! reaches and on which port, which address towerhook trusts as its proxy, what the image
//! installs where. Every towerhook setting these files set goes through towerhook's own
//! settings loader, so a misspelled or unsupported setting fails here rather than at
//! `docker compose up`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use towerhook::calls::client_ip::effective_client_ip;
use towerhook::calls::request::RequestHeaders;
use towerhook::configuration::{Settings, SinkKind, SourceKind};
use towerhook::definitions::IpList;

// ============================================================================ files

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo().join(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

/// `./deploy/x` or `deploy/x` (a path relative to the repository) → `deploy/x`.
fn relative(path: &str) -> &str {
    path.strip_prefix("./").unwrap_or(path)
}

fn load_settings(what: &str, file: Option<&Path>, env: &BTreeMap<String, String>) -> Settings {
    Settings::load_from(file, env.clone()).unwrap_or_else(|e| {
        panic!("towerhook refuses the settings of {what}: {e}\nvariables: {env:#?}")
    })
}

fn port_of(listen: &str) -> u16 {
    listen
        .parse::<SocketAddr>()
        .unwrap_or_else(|e| panic!("{listen:?} is not an address:port: {e}"))
        .port()
}

// ================================================================= compose interpolation

/// Compose's variable interpolation: `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`,
/// `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}`.
fn interpolate(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let end =
                closing_brace(inner).ok_or_else(|| format!("unterminated ${{ in {text:?}"))?;
            let body = &inner[..end];
            rest = &inner[end + 1..];
            let name_len = name_length(body);
            let (name, operator) = body.split_at(name_len);
            if name.is_empty() {
                return Err(format!("invalid interpolation ${{{body}}} in {text:?}"));
            }
            let value = vars.get(name);
            let non_empty = value.is_some_and(|v| !v.is_empty());
            let resolved = if operator.is_empty() {
                value.cloned().unwrap_or_default()
            } else if let Some(default) = operator.strip_prefix(":-") {
                if non_empty {
                    value.cloned().unwrap()
                } else {
                    interpolate(default, vars)?
                }
            } else if let Some(default) = operator.strip_prefix('-') {
                match value {
                    Some(v) => v.clone(),
                    None => interpolate(default, vars)?,
                }
            } else if let Some(message) = operator.strip_prefix(":?") {
                if !non_empty {
                    return Err(format!("required variable {name} is missing: {message}"));
                }
                value.cloned().unwrap()
            } else if let Some(message) = operator.strip_prefix('?') {
                value
                    .cloned()
                    .ok_or_else(|| format!("required variable {name} is missing: {message}"))?
            } else if let Some(alternative) = operator.strip_prefix(":+") {
                if non_empty {
                    interpolate(alternative, vars)?
                } else {
                    String::new()
                }
            } else if let Some(alternative) = operator.strip_prefix('+') {
                if value.is_some() {
                    interpolate(alternative, vars)?
                } else {
                    String::new()
                }
            } else {
                return Err(format!("unsupported interpolation ${{{body}}} in {text:?}"));
            };
            out.push_str(&resolved);
        } else {
            let len = name_length(after);
            if len == 0 {
                return Err(format!("a lone $ in {text:?} (write $$ for a literal $)"));
            }
            out.push_str(vars.get(&after[..len]).map_or("", String::as_str));
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn name_length(text: &str) -> usize {
    text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len())
}

fn closing_brace(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// Names of the variables a text interpolates.
fn variables_in(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            rest = tail;
            continue;
        }
        let start = after.strip_prefix('{').unwrap_or(after);
        let len = name_length(start);
        if len > 0 {
            names.insert(start[..len].to_string());
        }
        rest = &start[len..];
    }
    names
}

fn interpolate_value(value: &Value, vars: &BTreeMap<String, String>) -> Result<Value, String> {
    Ok(match value {
        Value::String(text) => Value::String(interpolate(text, vars)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| interpolate_value(item, vars))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), interpolate_value(v, vars)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

// ====================================================================== .env files

/// `NAME=value` lines of an env file (comments and blank lines skipped), in order.
fn env_file(relative_path: &str) -> Vec<(String, String)> {
    read(relative_path)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (name, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("{relative_path}: {line:?} is not NAME=value"));
            (name.trim().to_string(), value.trim().to_string())
        })
        .collect()
}

/// The values an operator puts in `.env`: those of `.env.example`, and a sample for every
/// value the example leaves for the operator to fill in (passwords, keys).
fn operator_env() -> BTreeMap<String, String> {
    env_file(".env.example")
        .into_iter()
        .map(|(name, value)| {
            let value = if value.is_empty() {
                format!("sample-{}", name.to_ascii_lowercase().replace('_', "-"))
            } else {
                value
            };
            (name, value)
        })
        .collect()
}

// ========================================================================= compose

const COMPOSE: &str = "docker-compose.yml";

fn compose_raw() -> Value {
    serde_saphyr::from_str::<Value>(&read(COMPOSE))
        .unwrap_or_else(|e| panic!("{COMPOSE} is not valid YAML: {e}"))
}

/// Names given a non-empty default in docker-compose.yml (`${NAME:-default}`): optional.
fn optional_variables() -> BTreeSet<String> {
    let text = read(COMPOSE);
    variables_in(&text)
        .into_iter()
        .filter(|name| {
            text.match_indices(&format!("${{{name}:-"))
                .chain(text.match_indices(&format!("${{{name}-")))
                .any(|(at, found)| !text[at + found.len()..].starts_with('}'))
        })
        .collect()
}

/// Runs `check` on docker-compose.yml as Compose sees it with the values of `.env.example`,
/// and with only the required variables set (the file's own defaults for the rest).
fn for_each_compose(check: impl Fn(&Value)) {
    let filled = operator_env();
    let mut minimal = filled.clone();
    for name in optional_variables() {
        minimal.remove(&name);
    }
    for (variant, vars) in [
        (".env.example filled in", filled),
        (
            "only the required variables, defaults for the rest",
            minimal,
        ),
    ] {
        let compose = interpolate_value(&compose_raw(), &vars)
            .unwrap_or_else(|e| panic!("{COMPOSE} with {variant}: {e}"));
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&compose)));
        if let Err(panic) = outcome {
            eprintln!("({COMPOSE} with {variant})");
            std::panic::resume_unwind(panic);
        }
    }
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    compose["services"].get(name).unwrap_or_else(|| {
        let names: Vec<_> = compose["services"]
            .as_object()
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default();
        panic!("{COMPOSE}: no service `{name}` (services: {names:?})")
    })
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A service's `environment`, as a mapping or as a list of `NAME=value`.
fn environment(service: &Value) -> BTreeMap<String, String> {
    match &service["environment"] {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), scalar(v))).collect(),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                let text = scalar(item);
                let (k, v) = text.split_once('=').unwrap_or((&text, ""));
                (k.to_string(), v.to_string())
            })
            .collect(),
        Value::Null => BTreeMap::new(),
        other => panic!("environment must be a mapping or a list, not {other}"),
    }
}

/// `(source, target, read_only)` of a service's volumes, short or long syntax.
fn mounts(service: &Value) -> Vec<(String, String, bool)> {
    service["volumes"]
        .as_array()
        .map(|volumes| {
            volumes
                .iter()
                .map(|volume| match volume {
                    Value::String(text) => {
                        let parts = split_outside_braces(text, ':');
                        match parts.as_slice() {
                            [target] => (String::new(), target.to_string(), false),
                            [source, target] => (source.to_string(), target.to_string(), false),
                            [source, target, mode] => (
                                source.to_string(),
                                target.to_string(),
                                mode.split(',').any(|m| m == "ro"),
                            ),
                            _ => panic!("cannot read the volume {text:?}"),
                        }
                    }
                    Value::Object(_) => (
                        scalar(&volume["source"]),
                        scalar(&volume["target"]),
                        volume["read_only"].as_bool().unwrap_or(false),
                    ),
                    other => panic!("cannot read the volume {other}"),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Splits on `separator`, except inside `${...}` (whose `:?`/`:-` are no separators).
fn split_outside_braces(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' if text[..i].ends_with('$') => depth += 1,
            '}' if depth > 0 => depth -= 1,
            c if c == separator && depth == 0 => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn mount_at(service_name: &str, service: &Value, target: &str) -> (String, String, bool) {
    mounts(service)
        .into_iter()
        .find(|(_, t, _)| t.trim_end_matches('/') == target.trim_end_matches('/'))
        .unwrap_or_else(|| {
            panic!(
                "service {service_name} mounts nothing at {target} (mounts: {:?})",
                mounts(service)
            )
        })
}

fn depends_on(service: &Value) -> Vec<String> {
    match &service["depends_on"] {
        Value::Array(items) => items.iter().map(scalar).collect(),
        Value::Object(map) => map.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// The healthcheck's command as one string (`CMD` / `CMD-SHELL` list or a string).
fn healthcheck(service_name: &str, service: &Value) -> String {
    let test = &service["healthcheck"]["test"];
    let text = match test {
        Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(" "),
        Value::String(text) => text.clone(),
        _ => panic!("service {service_name} has no healthcheck"),
    };
    assert!(
        !text.trim().is_empty() && !text.starts_with("NONE"),
        "service {service_name}: the healthcheck is disabled ({text:?})"
    );
    assert!(
        service["healthcheck"]["disable"].as_bool() != Some(true),
        "service {service_name}: the healthcheck is disabled"
    );
    text
}

/// Compose durations: `40s`, `1m30s`, `500ms`, `1h`.
fn duration_secs(text: &str) -> f64 {
    let mut total = 0.0;
    let mut number = String::new();
    let mut chars = text.trim().chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while let Some(&next) = chars.peek() {
            if next.is_ascii_alphabetic() {
                unit.push(next);
                chars.next();
            } else {
                break;
            }
        }
        let value: f64 = number
            .parse()
            .unwrap_or_else(|_| panic!("bad duration {text:?}"));
        number.clear();
        total += value
            * match unit.as_str() {
                "h" => 3600.0,
                "m" | "min" => 60.0,
                "s" | "sec" => 1.0,
                "ms" => 0.001,
                "us" => 0.000_001,
                other => panic!("unknown unit {other:?} in {text:?}"),
            };
    }
    if !number.is_empty() {
        // systemd: a bare number is seconds
        total += number.parse::<f64>().unwrap();
    }
    total
}

fn ipv4_network(text: &str) -> (std::net::Ipv4Addr, u8) {
    let (address, prefix) = text
        .split_once('/')
        .unwrap_or_else(|| panic!("{text:?} is not a network a.b.c.d/n"));
    (
        address.parse().unwrap_or_else(|e| panic!("{text:?}: {e}")),
        prefix.parse().unwrap_or_else(|e| panic!("{text:?}: {e}")),
    )
}

fn in_network(ip: std::net::Ipv4Addr, network: (std::net::Ipv4Addr, u8)) -> bool {
    let mask = if network.1 == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(network.1))
    };
    u32::from(ip) & mask == u32::from(network.0) & mask
}

// ===================================================================== Dockerfile

#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
}

#[derive(Debug)]
struct Stage {
    image: String,
    name: Option<String>,
    instructions: Vec<Instruction>,
}

impl Stage {
    fn all(&self, keyword: &str) -> impl Iterator<Item = &Instruction> {
        self.instructions
            .iter()
            .filter(move |i| i.keyword == keyword)
    }

    fn env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for instruction in self.all("ENV") {
            let words: Vec<&str> = instruction.args.split_whitespace().collect();
            if words.first().is_some_and(|w| !w.contains('=')) {
                // legacy `ENV NAME value`
                env.insert(words[0].to_string(), words[1..].join(" "));
                continue;
            }
            for word in words {
                let (name, value) = word
                    .split_once('=')
                    .unwrap_or_else(|| panic!("Dockerfile: cannot read ENV {word:?}"));
                env.insert(name.to_string(), value.trim_matches('"').to_string());
            }
        }
        env
    }

    fn runs(&self) -> Vec<&str> {
        self.all("RUN").map(|i| i.args.as_str()).collect()
    }

    fn copies(&self) -> Vec<Copy> {
        self.all("COPY").map(|i| Copy::parse(&i.args)).collect()
    }
}

#[derive(Debug)]
struct Copy {
    from: Option<String>,
    sources: Vec<String>,
    destination: String,
}

impl Copy {
    fn parse(args: &str) -> Self {
        let mut from = None;
        let mut paths = Vec::new();
        for word in args.split_whitespace() {
            if let Some(stage) = word.strip_prefix("--from=") {
                from = Some(stage.to_string());
            } else if !word.starts_with("--") {
                paths.push(word.to_string());
            }
        }
        let destination = paths.pop().expect("COPY without a destination");
        Self {
            from,
            sources: paths,
            destination,
        }
    }
}

struct Dockerfile {
    stages: Vec<Stage>,
}

impl Dockerfile {
    fn parse(text: &str) -> Self {
        let mut logical = Vec::new();
        let mut current = String::new();
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
                continue;
            }
            match trimmed.strip_suffix('\\') {
                Some(start) => {
                    current.push_str(start);
                    current.push(' ');
                }
                None => {
                    current.push_str(trimmed);
                    logical.push(std::mem::take(&mut current));
                }
            }
        }
        let mut args = BTreeMap::new();
        let mut stages: Vec<Stage> = Vec::new();
        for line in logical.iter().filter(|l| !l.trim().is_empty()) {
            let (keyword, rest) = line
                .trim()
                .split_once(char::is_whitespace)
                .unwrap_or((line, ""));
            let keyword = keyword.to_ascii_uppercase();
            let rest = rest.trim().to_string();
            if keyword == "FROM" {
                let words: Vec<&str> = rest.split_whitespace().collect();
                let image = words
                    .iter()
                    .find(|w| !w.starts_with("--"))
                    .expect("FROM without an image");
                let name = words
                    .iter()
                    .position(|w| w.eq_ignore_ascii_case("as"))
                    .map(|i| words[i + 1].to_string());
                let image = interpolate(image, &args).unwrap();
                stages.push(Stage {
                    image,
                    name,
                    instructions: Vec::new(),
                });
            } else if let Some(stage) = stages.last_mut() {
                stage.instructions.push(Instruction {
                    keyword,
                    args: rest,
                });
            } else if keyword == "ARG" {
                let (name, value) = rest.split_once('=').unwrap_or((&rest, ""));
                args.insert(name.to_string(), value.to_string());
            }
        }
        Self { stages }
    }

    fn load() -> Self {
        Self::parse(&read("Dockerfile"))
    }

    fn builder(&self) -> &Stage {
        self.stages
            .iter()
            .find(|s| {
                s.name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case("builder"))
            })
            .unwrap_or_else(|| panic!("Dockerfile: no stage `FROM ... AS builder`"))
    }

    fn runtime(&self) -> &Stage {
        let last = self.stages.last().expect("Dockerfile: no FROM");
        assert!(
            !last
                .name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case("builder")),
            "Dockerfile: the last stage (the image) is the builder: not multi-stage"
        );
        last
    }
}

/// One `.dockerignore` pattern against a context path (`*` within a component, `**` across).
fn ignore_matches(pattern: &str, path: &str) -> bool {
    fn glob(pattern: &[&str], path: &[&str]) -> bool {
        match (pattern.first(), path.first()) {
            (None, _) => true, // a directory pattern also excludes what is inside it
            (Some(&"**"), _) => {
                glob(&pattern[1..], path) || (!path.is_empty() && glob(pattern, &path[1..]))
            }
            (Some(p), Some(c)) => component(p, c) && glob(&pattern[1..], &path[1..]),
            (Some(_), None) => false,
        }
    }
    fn component(pattern: &str, text: &str) -> bool {
        match pattern.split_once('*') {
            None => pattern == text,
            Some((head, tail)) => {
                text.starts_with(head)
                    && (head.len()..=text.len()).any(|i| component(tail, &text[i..]))
            }
        }
    }
    let pattern = pattern.trim().trim_start_matches('/').trim_end_matches('/');
    let pattern: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
    let path: Vec<&str> = relative(path).trim_end_matches('/').split('/').collect();
    glob(&pattern, &path)
}

fn dockerignored(path: &str) -> Option<String> {
    read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .find(|pattern| ignore_matches(pattern, path))
        .map(String::from)
}

// ========================================================================== nginx

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Open,
    Close,
    End,
}

#[derive(Debug)]
struct Directive {
    name: String,
    args: Vec<String>,
    block: Option<Vec<Directive>>,
}

fn nginx_tokens(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '{' | '}' | ';' => {
                chars.next();
                tokens.push(match c {
                    '{' => Token::Open,
                    '}' => Token::Close,
                    _ => Token::End,
                });
            }
            '"' | '\'' => {
                chars.next();
                let mut word = String::new();
                while let Some(c2) = chars.next() {
                    match c2 {
                        '\\' => word.extend(chars.next()),
                        q if q == c => break,
                        other => word.push(other),
                    }
                }
                tokens.push(Token::Word(word));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c2) = chars.peek() {
                    if c2.is_whitespace() || matches!(c2, '{' | '}' | ';') {
                        break;
                    }
                    word.push(c2);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    tokens
}

fn nginx_parse(what: &str, text: &str) -> Vec<Directive> {
    fn block(what: &str, tokens: &[Token], pos: &mut usize, nested: bool) -> Vec<Directive> {
        let mut out = Vec::new();
        while let Some(token) = tokens.get(*pos) {
            *pos += 1;
            let name = match token {
                Token::Close if nested => return out,
                Token::Word(word) => word.clone(),
                other => panic!("{what}: unexpected {other:?}"),
            };
            let mut args = Vec::new();
            loop {
                let token = tokens
                    .get(*pos)
                    .unwrap_or_else(|| panic!("{what}: `{name}` is not terminated by ; or {{}}"));
                *pos += 1;
                match token {
                    Token::Word(word) => args.push(word.clone()),
                    Token::End => {
                        out.push(Directive {
                            name,
                            args,
                            block: None,
                        });
                        break;
                    }
                    Token::Open => {
                        let inner = block(what, tokens, pos, true);
                        out.push(Directive {
                            name,
                            args,
                            block: Some(inner),
                        });
                        break;
                    }
                    Token::Close => panic!("{what}: `{name}` is not terminated by ;"),
                }
            }
        }
        assert!(!nested, "{what}: a block is not closed");
        out
    }
    let tokens = nginx_tokens(text);
    let mut pos = 0;
    block(what, &tokens, &mut pos, false)
}

/// The directives that apply to one request: the file level, the server, the location.
struct Scope<'a> {
    what: String,
    levels: Vec<&'a [Directive]>,
    location: String,
}

impl<'a> Scope<'a> {
    /// nginx inheritance: the innermost level that has the directive at all wins.
    fn directives(&self, name: &str) -> Vec<&'a Directive> {
        for level in self.levels.iter().rev() {
            let found: Vec<&Directive> = level.iter().filter(|d| d.name == name).collect();
            if !found.is_empty() {
                return found;
            }
        }
        Vec::new()
    }

    fn one(&self, name: &str) -> Option<&'a Directive> {
        self.directives(name).pop()
    }

    fn header(&self, header: &str) -> Option<String> {
        self.directives("proxy_set_header")
            .into_iter()
            .find(|d| {
                d.args
                    .first()
                    .is_some_and(|h| h.eq_ignore_ascii_case(header))
            })
            .map(|d| d.args[1..].join(" "))
    }

    fn variable(&self, name: &str) -> Option<String> {
        self.levels.iter().rev().find_map(|level| {
            level
                .iter()
                .find(|d| d.name == "set" && d.args.first().map(String::as_str) == Some(name))
                .map(|d| d.args[1].clone())
        })
    }

    /// `(host, port)` this location proxies to, `set` variables and upstreams resolved.
    fn upstream(&self, file: &[Directive]) -> (String, u16) {
        let pass = self.one("proxy_pass").unwrap_or_else(|| {
            panic!(
                "{}: location {} has no proxy_pass",
                self.what, self.location
            )
        });
        let mut target = pass.args[0].clone();
        let uses_variables = target.contains('$');
        while let Some(at) = target.find('$') {
            let len = name_length(&target[at + 1..]);
            let name = &target[at..at + 1 + len];
            let value = self.variable(name).unwrap_or_else(|| {
                panic!(
                    "{}: location {}: proxy_pass uses {name}, set nowhere",
                    self.what, self.location
                )
            });
            target.replace_range(at..at + 1 + len, &value);
        }
        let rest = target
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("{}: proxy_pass {target} is not http://", self.what));
        let authority = rest.split('/').next().unwrap();
        if let Some(upstream) = file
            .iter()
            .find(|d| d.name == "upstream" && d.args.first().map(String::as_str) == Some(authority))
        {
            let server = upstream
                .block
                .as_ref()
                .and_then(|b| b.iter().find(|d| d.name == "server"))
                .unwrap_or_else(|| panic!("{}: upstream {authority} has no server", self.what));
            return split_host_port(&server.args[0], 80);
        }
        let (host, port) = split_host_port(authority, 80);
        if uses_variables && host.parse::<IpAddr>().is_err() {
            assert!(
                self.one("resolver").is_some(),
                "{}: proxy_pass through a variable needs a `resolver` to look up {host}",
                self.what
            );
        }
        (host, port)
    }

    /// client_max_body_size in bytes (nginx default 1m; 0 = no limit).
    fn max_body(&self) -> u64 {
        let text = self
            .one("client_max_body_size")
            .map(|d| d.args[0].to_ascii_lowercase())
            .unwrap_or_else(|| "1m".into());
        let (number, factor) = match text.chars().last() {
            Some('k') => (&text[..text.len() - 1], 1024),
            Some('m') => (&text[..text.len() - 1], 1024 * 1024),
            Some('g') => (&text[..text.len() - 1], 1024 * 1024 * 1024),
            _ => (text.as_str(), 1),
        };
        let value: u64 = number
            .parse()
            .unwrap_or_else(|_| panic!("{}: client_max_body_size {text}", self.what));
        if value == 0 { u64::MAX } else { value * factor }
    }
}

fn split_host_port(text: &str, default_port: u16) -> (String, u16) {
    match text.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') => (
            host.trim_matches(['[', ']']).to_string(),
            port.parse()
                .unwrap_or_else(|_| panic!("bad port in {text:?}")),
        ),
        _ => (text.to_string(), default_port),
    }
}

/// Which location of `levels` (file, then the server if there is one) serves `uri`:
/// `=` exact match, else the longest prefix. Regex locations are not evaluated here.
fn route<'a>(what: &str, file: &'a [Directive], uri: &str) -> Scope<'a> {
    let servers: Vec<&Directive> = file.iter().filter(|d| d.name == "server").collect();
    let mut levels: Vec<&'a [Directive]> = vec![file];
    let is_default = |server: &&&Directive| {
        server
            .block
            .as_deref()
            .unwrap()
            .iter()
            .any(|d| d.name == "listen" && d.args.iter().any(|a| a == "default_server"))
    };
    let server = match servers.as_slice() {
        [] => None,
        [server] => Some(*server),
        _ => Some(*servers.iter().find(is_default).unwrap_or_else(|| {
            panic!("{what}: several server blocks and none is the default_server")
        })),
    };
    let candidates: &'a [Directive] = match server {
        None => file,
        Some(server) => {
            let block = server.block.as_deref().unwrap();
            levels.push(block);
            block
        }
    };
    let mut best: Option<(&Directive, usize)> = None;
    for location in candidates.iter().filter(|d| d.name == "location") {
        let (modifier, path) = match location.args.as_slice() {
            [path] => ("", path.as_str()),
            [modifier, path] => (modifier.as_str(), path.as_str()),
            other => panic!("{what}: cannot read location {other:?}"),
        };
        match modifier {
            "=" if path == uri => {
                best = Some((location, usize::MAX));
                break;
            }
            "=" => {}
            "" | "^~" if uri.starts_with(path) => {
                if best.is_none_or(|(_, len)| path.len() > len) {
                    best = Some((location, path.len()));
                }
            }
            "" | "^~" => {}
            "~" | "~*" => panic!(
                "{what}: regex location {path:?}: this test does not evaluate regex locations"
            ),
            other => panic!("{what}: unknown location modifier {other:?}"),
        }
    }
    let (location, _) = best.unwrap_or_else(|| panic!("{what}: no location serves {uri}"));
    levels.push(location.block.as_deref().unwrap());
    Scope {
        what: what.to_string(),
        levels,
        location: location.args.join(" "),
    }
}

/// Ports nginx listens on for other machines (loopback-only listens left out).
fn listen_ports(file: &[Directive]) -> Vec<u16> {
    listens(file, false)
}

fn listens(file: &[Directive], with_loopback: bool) -> Vec<u16> {
    file.iter()
        .filter(|d| d.name == "server")
        .flat_map(|s| s.block.as_deref().unwrap())
        .filter(|d| d.name == "listen")
        .filter_map(|d| {
            let address = &d.args[0];
            if let Ok(port) = address.parse::<u16>() {
                return Some(port);
            }
            let (host, port) = split_host_port(address, 80);
            let loopback =
                host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) || host == "localhost";
            (with_loopback || !loopback).then_some(port)
        })
        .collect()
}

// ===================================================================== ini / systemd

/// `[section]` → `key` → values (repeated keys keep every value).
fn ini(text: &str, comment: &[char]) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut sections: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with(comment) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_string();
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            sections
                .entry(current.clone())
                .or_default()
                .entry(key.trim().to_string())
                .or_default()
                .push(value.trim().to_string());
        }
    }
    sections
}

fn odoo_conf(path: &str) -> BTreeMap<String, String> {
    ini(&read(path), &[';', '#'])
        .remove("options")
        .unwrap_or_else(|| panic!("{path}: no [options] section"))
        .into_iter()
        .map(|(k, mut v)| (k, v.pop().unwrap()))
        .collect()
}

fn truthy(value: &str) -> bool {
    matches!(
        value.to_ascii_lowercase().as_str(),
        "true" | "yes" | "1" | "on"
    )
}

// ============================================================================ tests
// ---------------------------------------------------------------------- compose

#[test]
fn compose_has_the_four_services_and_no_version_key() {
    for_each_compose(|compose| {
        for name in ["db", "odoo", "towerhook", "proxy"] {
            service(compose, name);
        }
        assert!(
            compose.get("version").is_none(),
            "{COMPOSE}: the Compose specification has no `version:` key"
        );
    });
}

#[test]
fn only_the_proxy_publishes_a_port_and_it_is_the_port_nginx_listens_on() {
    for_each_compose(|compose| {
        for (name, svc) in compose["services"].as_object().unwrap() {
            assert!(
                svc.get("network_mode").is_none(),
                "service {name}: network_mode bypasses the compose network"
            );
            let published = svc["ports"].as_array().map_or(0, Vec::len);
            if name == "proxy" {
                assert!(published > 0, "the proxy publishes no port");
            } else {
                assert_eq!(
                    published, 0,
                    "service {name} publishes ports: only the proxy may"
                );
            }
        }
        let (nginx_path, nginx) = proxy_nginx(compose);
        let listening = listen_ports(&nginx);
        for port in service(compose, "proxy")["ports"].as_array().unwrap() {
            let text = match port {
                Value::Object(_) => scalar(&port["target"]),
                other => scalar(other),
            };
            let container_port: u16 = text
                .rsplit(':')
                .next()
                .unwrap()
                .trim_end_matches("/tcp")
                .parse()
                .unwrap_or_else(|_| panic!("cannot read the proxy's port {text:?}"));
            assert!(
                listening.contains(&container_port),
                "the proxy publishes container port {container_port}, but {nginx_path} listens on \
             {listening:?}"
            );
        }
    });
}

/// The nginx file the proxy service mounts into conf.d, parsed.
fn proxy_nginx(compose: &Value) -> (String, Vec<Directive>) {
    let proxy = service(compose, "proxy");
    let (source, target, _) = mounts(proxy)
        .into_iter()
        .find(|(_, target, _)| target.starts_with("/etc/nginx/"))
        .expect("the proxy mounts no nginx configuration");
    assert!(
        target.starts_with("/etc/nginx/conf.d/") && target.ends_with(".conf"),
        "the proxy's configuration is mounted at {target}: server blocks belong in \
         /etc/nginx/conf.d/*.conf (included inside http {{}})"
    );
    let path = relative(&source).to_string();
    let parsed = nginx_parse(&path, &read(&path));
    (path, parsed)
}

/// towerhook's settings inside the container: the image's ENV, then compose's environment.
fn towerhook_container_env(compose: &Value) -> BTreeMap<String, String> {
    let mut env = Dockerfile::load().runtime().env();
    env.extend(environment(service(compose, "towerhook")));
    env
}

fn towerhook_container_settings(compose: &Value) -> Settings {
    load_settings(
        "the towerhook container (Dockerfile ENV + docker-compose.yml environment)",
        None,
        &towerhook_container_env(compose),
    )
}

#[test]
fn every_towerhook_variable_of_compose_is_accepted_by_the_settings_loader() {
    for_each_compose(|compose| {
        let settings = towerhook_container_settings(compose);
        assert_eq!(
            settings.source,
            SourceKind::Odoo,
            "compose: TOWERHOOK_SOURCE"
        );
        assert_eq!(
            settings.log_sink,
            SinkKind::Odoo,
            "compose: TOWERHOOK_LOG_SINK"
        );
        assert!(
            settings
                .admin_token
                .as_deref()
                .is_some_and(|t| !t.is_empty()),
            "compose: TOWERHOOK_ADMIN_TOKEN"
        );
        let listen: SocketAddr = settings.listen.parse().unwrap();
        assert!(
            listen.ip().is_unspecified(),
            "towerhook listens on {listen} inside its container: the proxy cannot reach it \
         (use 0.0.0.0 or [::])"
        );
    });
}

#[test]
fn the_proxy_routes_webhooks_to_towerhook_and_the_rest_to_odoo() {
    for_each_compose(|compose| {
        let settings = towerhook_container_settings(compose);
        let (path, nginx) = proxy_nginx(compose);
        let odoo_service = service(compose, "odoo");
        let (conf_source, _, _) = mount_at("odoo", odoo_service, "/etc/odoo/odoo.conf");
        let odoo = odoo_conf(relative(&conf_source));
        let http_port: u16 = odoo.get("http_port").map_or(8069, |p| p.parse().unwrap());
        let gevent_port: u16 = odoo.get("gevent_port").map_or(8072, |p| p.parse().unwrap());

        let webhook = route(&path, &nginx, "/cetmix_tower_webhooks/demo/hello");
        assert_eq!(
            webhook.upstream(&nginx),
            ("towerhook".to_string(), port_of(&settings.listen)),
            "{path}: /cetmix_tower_webhooks/ must reach the towerhook service on the port it \
         listens on ({})",
            settings.listen
        );
        for uri in ["/", "/web/login", "/web/health", "/jsonrpc"] {
            assert_eq!(
                route(&path, &nginx, uri).upstream(&nginx),
                ("odoo".to_string(), http_port),
                "{path}: {uri} must reach Odoo's HTTP port {http_port}"
            );
        }
        let websocket = route(&path, &nginx, "/websocket");
        assert_eq!(
            websocket.upstream(&nginx),
            ("odoo".to_string(), gevent_port),
            "{path}: /websocket must reach Odoo's gevent port {gevent_port}"
        );
        assert!(
            odoo.get("workers")
                .is_some_and(|w| w.parse::<u32>().unwrap() > 0),
            "odoo.conf: the gevent port {gevent_port} only listens in multi-process mode \
         (workers > 0)"
        );
        assert_eq!(
            websocket.header("Upgrade").as_deref(),
            Some("$http_upgrade"),
            "{path}: /websocket must pass the Upgrade header"
        );
        assert!(
            websocket
                .header("Connection")
                .is_some_and(|v| v == "$connection_upgrade" || v.eq_ignore_ascii_case("upgrade")),
            "{path}: /websocket must pass Connection: upgrade"
        );
        assert_eq!(
            websocket
                .one("proxy_http_version")
                .map(|d| d.args[0].as_str()),
            Some("1.1"),
            "{path}: websockets need proxy_http_version 1.1"
        );
        for uri in ["/cetmix_tower_webhooks/x", "/web", "/websocket"] {
            let scope = route(&path, &nginx, uri);
            assert!(
                scope.header("Host").is_some(),
                "{path}: {uri} does not pass Host"
            );
            assert!(
                scope.header("X-Forwarded-Proto").is_some(),
                "{path}: {uri} does not pass X-Forwarded-Proto"
            );
            assert_eq!(
                scope.header("X-Forwarded-For").as_deref(),
                Some("$proxy_add_x_forwarded_for"),
                "{path}: {uri}: X-Forwarded-For"
            );
        }
        assert_eq!(
            webhook.header("X-Real-IP").as_deref(),
            Some("$remote_addr"),
            "{path}: webhooks: X-Real-IP"
        );
    });
}

#[test]
fn the_webhook_route_accepts_bodies_up_to_towerhooks_own_limit() {
    for_each_compose(|compose| {
        let settings = towerhook_container_settings(compose);
        let (path, nginx) = proxy_nginx(compose);
        let limit = route(&path, &nginx, "/cetmix_tower_webhooks/x").max_body();
        assert!(
            limit >= settings.max_body_bytes as u64,
            "{path}: client_max_body_size ({limit} bytes) for webhooks is below towerhook's \
         max_body_bytes ({}): nginx would refuse calls towerhook accepts, unlogged",
            settings.max_body_bytes
        );
    });
}

#[test]
fn towerhook_trusts_exactly_the_proxys_fixed_address() {
    for_each_compose(|compose| {
        let settings = towerhook_container_settings(compose);
        let proxy = service(compose, "proxy");
        let networks = proxy["networks"]
            .as_object()
            .expect("the proxy has no `networks:` with a fixed ipv4_address");
        let (network, attachment) = networks
            .iter()
            .find(|(_, a)| a.get("ipv4_address").is_some())
            .expect("the proxy has no fixed ipv4_address");
        let proxy_ip: std::net::Ipv4Addr = scalar(&attachment["ipv4_address"])
            .parse()
            .expect("the proxy's ipv4_address is not an IPv4 address");

        let subnet = compose["networks"][network]["ipam"]["config"]
            .as_array()
            .and_then(|configs| configs.iter().find_map(|c| c.get("subnet")))
            .map(scalar)
            .unwrap_or_else(|| {
                panic!("network {network} has no fixed subnet (ipam.config.subnet)")
            });
        assert!(
            in_network(proxy_ip, ipv4_network(&subnet)),
            "the proxy's address {proxy_ip} is outside its network's subnet {subnet}"
        );

        let towerhook = service(compose, "towerhook");
        let attached = match &towerhook["networks"] {
            Value::Null => vec!["default".to_string()],
            Value::Array(names) => names.iter().map(scalar).collect(),
            Value::Object(map) => map.keys().cloned().collect(),
            other => panic!("towerhook: cannot read networks {other}"),
        };
        assert!(
            attached.iter().any(|n| n == network),
            "towerhook is not on the proxy's network {network} (it is on {attached:?})"
        );

        assert_eq!(
            settings.trusted_proxies,
            vec![proxy_ip.to_string()],
            "TOWERHOOK_TRUSTED_PROXIES must name exactly the proxy's address"
        );

        // What that means for a call: through the proxy, the address nginx saw (appended
        // last by $proxy_add_x_forwarded_for) is the client, whatever the caller wrote;
        // from anywhere else, the header is ignored.
        let trusted: Vec<IpList> = settings
            .trusted_proxies
            .iter()
            .map(|t| IpList::parse(t))
            .collect();
        let trusted: Vec<&IpList> = trusted.iter().collect();
        let forwarded = RequestHeaders::from_pairs([(
            "X-Forwarded-For".to_string(),
            "10.0.0.5, 203.0.113.7".to_string(),
        )]);
        assert_eq!(
            effective_client_ip(Some(IpAddr::V4(proxy_ip)), &forwarded, &trusted),
            Some("203.0.113.7".parse().unwrap()),
            "a call through the proxy must be judged by the address nginx saw"
        );
        let other_container: IpAddr = {
            let mut octets = proxy_ip.octets();
            octets[3] = octets[3].wrapping_add(1);
            IpAddr::from(octets)
        };
        assert_eq!(
            effective_client_ip(Some(other_container), &forwarded, &trusted),
            Some(other_container),
            "a neighbour on the compose network must not be able to claim another address"
        );
    });
}

#[test]
fn towerhook_reaches_odoo_by_service_name_and_port() {
    for_each_compose(|compose| {
        let settings = towerhook_container_settings(compose);
        let url = settings
            .odoo_url
            .as_deref()
            .expect("TOWERHOOK_ODOO_URL is not set");
        let authority = url
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("TOWERHOOK_ODOO_URL {url}: plain http:// inside the network"))
            .trim_end_matches('/');
        let (host, port) = split_host_port(authority, 80);
        service(compose, &host);
        assert_eq!(
            host, "odoo",
            "TOWERHOOK_ODOO_URL {url} must name the odoo service"
        );
        let (conf_source, _, _) = mount_at("odoo", service(compose, "odoo"), "/etc/odoo/odoo.conf");
        let odoo = odoo_conf(relative(&conf_source));
        let http_port: u16 = odoo.get("http_port").map_or(8069, |p| p.parse().unwrap());
        assert_eq!(
            port, http_port,
            "TOWERHOOK_ODOO_URL {url}: Odoo listens on {http_port}"
        );

        let command = service(compose, "odoo")["command"]
            .as_array()
            .map(|c| c.iter().map(scalar).collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        if let Some(database) = command
            .split_whitespace()
            .find_map(|w| w.strip_prefix("--database="))
        {
            assert_eq!(
                Some(database),
                settings.odoo_db.as_deref(),
                "Odoo serves database {database}, towerhook reads TOWERHOOK_ODOO_DB"
            );
        }
    });
}

#[test]
fn every_service_has_a_healthcheck_and_towerhooks_checks_readiness() {
    for_each_compose(|compose| {
        for name in ["db", "odoo", "towerhook", "proxy"] {
            healthcheck(name, service(compose, name));
        }
        assert!(
            healthcheck("db", service(compose, "db")).contains("pg_isready"),
            "db: the healthcheck should use pg_isready"
        );
        // The proxy's probe asks nginx itself, on a port it listens on.
        let proxy = healthcheck("proxy", service(compose, "proxy"));
        let url = proxy
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("proxy: the healthcheck names no http:// URL: {proxy}"));
        let authority = url["http://".len()..].split('/').next().unwrap();
        let (_, port) = split_host_port(authority, 80);
        let (path, nginx) = proxy_nginx(compose);
        assert!(
            listens(&nginx, true).contains(&port),
            "proxy: the healthcheck asks port {port}, {path} listens on {:?}",
            listens(&nginx, true)
        );
        let towerhook = healthcheck("towerhook", service(compose, "towerhook"));
        assert!(
            towerhook.contains("/readyz"),
            "towerhook: the healthcheck should ask /readyz, got {towerhook:?}"
        );
        // The probe the healthcheck runs must exist in the image.
        let program = towerhook.split_whitespace().nth(1).unwrap_or_default();
        if !program.starts_with('/') && program != "towerhook" {
            let installed = Dockerfile::load()
                .runtime()
                .copies()
                .iter()
                .any(|c| c.destination.rsplit('/').next() == Some(program));
            assert!(
                installed,
                "the towerhook healthcheck runs {program}, which the image lacks"
            );
        }
    });
}

#[test]
fn towerhook_service_is_built_here_restarts_keeps_its_data_and_stops_gracefully() {
    for_each_compose(|compose| {
        let settings = towerhook_container_settings(compose);
        let towerhook = service(compose, "towerhook");
        let context = match &towerhook["build"] {
            Value::String(context) => context.clone(),
            Value::Object(_) => scalar(&towerhook["build"]["context"]),
            _ => panic!("towerhook: `build: .` expected"),
        };
        assert!(
            matches!(context.as_str(), "." | "./"),
            "towerhook must be built from this repository (build: .), not {context:?}"
        );
        assert_eq!(
            scalar(&towerhook["restart"]),
            "unless-stopped",
            "towerhook: restart"
        );
        assert!(
            depends_on(towerhook).contains(&"odoo".to_string()),
            "towerhook must depend on odoo"
        );
        let data_dir = settings.data_dir.to_string_lossy().to_string();
        let (source, _, read_only) = mount_at("towerhook", towerhook, &data_dir);
        assert!(
            !source.is_empty() && !source.starts_with('.') && !source.starts_with('/'),
            "towerhook's data directory should be a named volume, not {source:?}"
        );
        assert!(
            !read_only,
            "towerhook's data directory is mounted read-only"
        );
        assert!(
            compose["volumes"].get(&source).is_some(),
            "volume {source} is not declared under top-level `volumes:`"
        );
        let grace = duration_secs(&scalar(&towerhook["stop_grace_period"]));
        assert!(
            grace > settings.shutdown_grace_secs,
            "towerhook finishes calls for up to shutdown_grace_secs = {} s after SIGTERM; \
         stop_grace_period is {grace} s (compose's default is 10 s), after which Docker kills it",
            settings.shutdown_grace_secs
        );
    });
}

#[test]
fn odoo_mounts_cetmix_tower_and_the_companion_addon_on_its_addons_path() {
    let raw = compose_raw();
    for_each_compose(|compose| {
        let odoo = service(compose, "odoo");
        let (conf_source, _, _) = mount_at("odoo", odoo, "/etc/odoo/odoo.conf");
        let conf_path = relative(&conf_source).to_string();
        let conf = odoo_conf(&conf_path);
        let addons_path: Vec<&str> = conf
            .get("addons_path")
            .unwrap_or_else(|| panic!("{conf_path}: no addons_path"))
            .split(',')
            .map(str::trim)
            .collect();

        let (cetmix_source, cetmix_target, cetmix_ro) = mount_at(
            "odoo",
            service(&raw, "odoo"),
            "/mnt/extra-addons/cetmix-tower",
        );
        assert!(
            cetmix_source.starts_with("${CETMIX_TOWER_ADDONS:?"),
            "the Cetmix Tower addons come from CETMIX_TOWER_ADDONS (required), not {cetmix_source:?}"
        );
        let (_, addon_target, addon_ro) = mounts(odoo)
            .into_iter()
            .find(|(source, _, _)| relative(source) == "odoo_addon")
            .expect("odoo does not mount ./odoo_addon (the companion addon)");
        for (target, read_only) in [(&cetmix_target, cetmix_ro), (&addon_target, addon_ro)] {
            assert!(
                addons_path.contains(&target.trim_end_matches('/')),
                "{conf_path}: addons_path {addons_path:?} lacks {target}"
            );
            assert!(read_only, "odoo: {target} should be mounted read-only");
        }
        assert!(
            conf.get("proxy_mode").is_some_and(|v| truthy(v)),
            "{conf_path}: proxy_mode = True (Odoo is behind nginx)"
        );
        let db_host = conf.get("db_host").map(String::as_str).unwrap_or("db");
        service(compose, db_host);
        assert_eq!(db_host, "db", "{conf_path}: db_host must be the db service");

        // Odoo refuses an addons path entry that holds no module.
        let addon_dir = repo().join("odoo_addon");
        if addon_dir.is_dir() {
            let modules = std::fs::read_dir(&addon_dir)
                .unwrap()
                .filter_map(Result::ok)
                .filter(|e| e.path().join("__manifest__.py").is_file())
                .count();
            assert!(
                modules > 0,
                "odoo_addon/ holds no module (no */__manifest__.py): Odoo refuses it on addons_path"
            );
        }
    });
}

#[test]
fn odoo_image_has_cetmix_towers_python_dependencies() {
    for_each_compose(|compose| {
        let odoo = service(compose, "odoo");
        let dockerfile = match &odoo["build"] {
            Value::Object(_) => {
                let context = relative(&scalar(&odoo["build"]["context"])).to_string();
                let file = scalar(&odoo["build"]["dockerfile"]);
                let file = if file.is_empty() {
                    "Dockerfile".to_string()
                } else {
                    file
                };
                format!("{context}/{file}")
            }
            Value::Null => {
                let image = scalar(&odoo["image"]);
                panic!(
                    "odoo runs {image} as is: stock odoo:17.0 lacks paramiko, tldextract, dnspython \
                 and pyyaml, which Cetmix Tower's modules require"
                )
            }
            other => format!("{}/Dockerfile", relative(&scalar(other))),
        };
        let parsed = Dockerfile::parse(&read(&dockerfile));
        let stage = parsed.stages.last().unwrap();
        assert!(
            stage.image.starts_with("odoo:17"),
            "{dockerfile}: based on {}, expected the official odoo:17.0",
            stage.image
        );
        let runs = stage.runs().join("\n");
        for package in ["paramiko", "pyyaml", "tldextract", "dnspython"] {
            assert!(
                runs.contains(package),
                "{dockerfile}: does not install {package}"
            );
        }
    });
}

#[test]
fn env_example_documents_exactly_the_variables_compose_uses() {
    let used = variables_in(&read(COMPOSE));
    let documented: BTreeSet<String> = env_file(".env.example")
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let undocumented: Vec<_> = used.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "{COMPOSE} uses {undocumented:?}, missing from .env.example"
    );
    let unused: Vec<_> = documented.difference(&used).collect();
    assert!(
        unused.is_empty(),
        ".env.example sets {unused:?}, which {COMPOSE} never uses (Compose passes only \
         what the file names to containers)"
    );
}

#[test]
fn env_example_towerhook_variables_are_accepted_by_the_settings_loader() {
    let env: BTreeMap<String, String> = env_file(".env.example")
        .into_iter()
        .filter(|(name, _)| name.starts_with("TOWERHOOK_"))
        .collect();
    assert!(!env.is_empty(), ".env.example sets no TOWERHOOK_ variable");
    load_settings(".env.example", None, &env);
    // And as the operator fills them in.
    let filled: BTreeMap<String, String> = operator_env()
        .into_iter()
        .filter(|(name, _)| name.starts_with("TOWERHOOK_"))
        .collect();
    load_settings(".env.example, filled in", None, &filled);
}

#[test]
fn compose_refuses_to_start_without_the_required_settings() {
    for name in [
        "CETMIX_TOWER_ADDONS",
        "POSTGRES_PASSWORD",
        "TOWERHOOK_ODOO_DB",
        "TOWERHOOK_ODOO_LOGIN",
        "TOWERHOOK_ADMIN_TOKEN",
    ] {
        let mut vars = operator_env();
        vars.remove(name);
        let error = interpolate_value(&compose_raw(), &vars).expect_err(&format!(
            "{COMPOSE} starts without {name}: use ${{{name}:?message}}"
        ));
        assert!(error.contains(name), "{error}");
    }
}

// ------------------------------------------------------------------- Dockerfile

#[test]
fn dockerfile_builds_in_a_bookworm_rust_stage_against_debians_python() {
    let dockerfile = Dockerfile::load();
    assert!(dockerfile.stages.len() >= 2, "Dockerfile: not multi-stage");
    let builder = dockerfile.builder();
    assert!(
        builder.image.starts_with("rust:") && builder.image.contains("bookworm"),
        "Dockerfile: the builder is {}, expected a rust:*-bookworm image",
        builder.image
    );
    assert_eq!(
        builder.env().get("PYO3_PYTHON").map(String::as_str),
        Some("/usr/bin/python3.11"),
        "Dockerfile: the builder must set PYO3_PYTHON=/usr/bin/python3.11 (the [env] of \
         .cargo/config.toml names a pyenv path that does not exist in the image)"
    );
    let runs = builder.runs().join("\n");
    assert!(
        runs.contains("python3.11-dev") || runs.contains("libpython3.11-dev"),
        "Dockerfile: the builder does not install Debian's python3.11-dev"
    );
    assert!(
        builder.runs().iter().any(|r| r.contains("cargo build")
            && r.contains("--release")
            && r.contains("--locked")),
        "Dockerfile: no `cargo build --release --locked` in the builder"
    );
    let copied: Vec<String> = builder
        .copies()
        .into_iter()
        .filter(|c| c.from.is_none())
        .flat_map(|c| c.sources)
        .map(|s| relative(&s).trim_end_matches('/').to_string())
        .collect();
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "src",
        "python_sandbox",
    ] {
        assert!(
            copied.iter().any(|c| c == needed),
            "Dockerfile: the builder does not copy {needed} (copies {copied:?})"
        );
    }
}

#[test]
fn dockerfile_runtime_is_slim_non_root_and_serves_by_default() {
    let dockerfile = Dockerfile::load();
    let runtime = dockerfile.runtime();
    assert_eq!(
        runtime.image, "debian:bookworm-slim",
        "Dockerfile: runtime base image"
    );
    let runs = runtime.runs().join("\n");
    for package in ["libpython3.11", "ca-certificates"] {
        assert!(
            runs.contains(package),
            "Dockerfile: the runtime does not install {package}"
        );
    }
    let binary = runtime
        .copies()
        .into_iter()
        .find(|c| c.from.as_deref() == Some("builder") && c.destination.ends_with("/towerhook"))
        .expect("Dockerfile: no COPY --from=builder of the towerhook binary");
    assert!(
        binary.destination.starts_with("/usr/local/bin/")
            || binary.destination.starts_with("/usr/bin/"),
        "Dockerfile: the binary lands in {}, not on PATH (ENTRYPOINT [\"towerhook\"])",
        binary.destination
    );
    let json = |keyword: &str| -> Vec<String> {
        let instruction = runtime
            .all(keyword)
            .last()
            .unwrap_or_else(|| panic!("Dockerfile: no {keyword}"));
        serde_json::from_str(&instruction.args)
            .unwrap_or_else(|e| panic!("Dockerfile: {keyword} should be a JSON list: {e}"))
    };
    assert_eq!(json("ENTRYPOINT"), ["towerhook"]);
    assert_eq!(json("CMD"), ["serve"]);

    let user = runtime
        .all("USER")
        .last()
        .expect("Dockerfile: no USER: the image would run as root")
        .args
        .clone();
    let name = user.split(':').next().unwrap();
    assert!(
        name != "root" && name != "0",
        "Dockerfile: USER {user} is root"
    );

    let env = runtime.env();
    let listen = env
        .get("TOWERHOOK_LISTEN")
        .expect("Dockerfile: no TOWERHOOK_LISTEN");
    let address: SocketAddr = listen.parse().expect("TOWERHOOK_LISTEN");
    assert!(
        address.ip().is_unspecified(),
        "Dockerfile: TOWERHOOK_LISTEN={listen} is unreachable from outside the container"
    );
    let exposed: Vec<u16> = runtime
        .all("EXPOSE")
        .flat_map(|i| {
            i.args
                .split_whitespace()
                .map(|p| p.trim_end_matches("/tcp").parse().unwrap())
        })
        .collect();
    assert!(
        exposed.contains(&address.port()),
        "Dockerfile: EXPOSE {exposed:?} does not include the listen port {}",
        address.port()
    );

    let data_dir = env
        .get("TOWERHOOK_DATA_DIR")
        .expect("Dockerfile: no TOWERHOOK_DATA_DIR");
    let volumes = runtime
        .all("VOLUME")
        .map(|i| i.args.clone())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        volumes.contains(data_dir.as_str()),
        "Dockerfile: TOWERHOOK_DATA_DIR={data_dir} is not a VOLUME ({volumes})"
    );

    let healthcheck = runtime
        .all("HEALTHCHECK")
        .last()
        .expect("Dockerfile: no HEALTHCHECK")
        .args
        .clone();
    assert!(
        healthcheck.contains("/healthz"),
        "Dockerfile: HEALTHCHECK {healthcheck}"
    );
}

#[test]
fn dockerfile_installs_the_sandbox_packages_where_towerhook_looks_for_them() {
    let dockerfile = Dockerfile::load();
    let runtime = dockerfile.runtime();
    let packages_dir = runtime
        .env()
        .get("TOWERHOOK_PYTHON_PACKAGES_DIR")
        .cloned()
        .expect("Dockerfile: no TOWERHOOK_PYTHON_PACKAGES_DIR (the default is a path of the build checkout)");
    let (stage, target) = dockerfile
        .stages
        .iter()
        .find_map(|stage| {
            stage.runs().into_iter().find_map(|run| {
                if !(run.contains("pip install")
                    && run.contains("-r python_sandbox/requirements.txt"))
                {
                    return None;
                }
                let words: Vec<&str> = run.split_whitespace().collect();
                let target = words.iter().enumerate().find_map(|(i, w)| {
                    w.strip_prefix("--target=")
                        .map(String::from)
                        .or_else(|| (*w == "--target").then(|| words[i + 1].to_string()))
                });
                Some((stage, target))
            })
        })
        .expect("Dockerfile: no `pip install ... -r python_sandbox/requirements.txt`");
    let target = target.expect("Dockerfile: pip install without --target");
    let installed_at = if std::ptr::eq(stage, runtime) {
        target
    } else {
        let copy = runtime
            .copies()
            .into_iter()
            .find(|c| c.from.as_deref() == stage.name.as_deref() && c.sources.contains(&target))
            .unwrap_or_else(|| {
                panic!("Dockerfile: the packages installed into {target} are not copied into the runtime")
            });
        copy.destination
    };
    assert_eq!(
        installed_at.trim_end_matches('/'),
        packages_dir.trim_end_matches('/'),
        "Dockerfile: the sandbox packages end up in {installed_at}, towerhook looks in \
         TOWERHOOK_PYTHON_PACKAGES_DIR={packages_dir}"
    );
}

#[test]
fn dockerfile_defaults_serve_the_demo_with_its_secrets() {
    let runtime_stage = Dockerfile::load();
    let runtime = runtime_stage.runtime();
    let env = runtime.env();
    let settings = load_settings("the image's ENV (docker run)", None, &env);
    assert_eq!(settings.source, SourceKind::Yaml);
    let demo = runtime
        .copies()
        .into_iter()
        .find(|c| {
            c.from.is_none()
                && c.sources
                    .iter()
                    .any(|s| relative(s).trim_end_matches('/') == "demo")
        })
        .expect("Dockerfile: demo/ is not copied into the image");
    let inside = |container_path: &Path, what: &str| -> PathBuf {
        let rest = container_path
            .strip_prefix(&demo.destination)
            .unwrap_or_else(|_| {
                panic!(
                    "{what} {} is not inside the copied demo {}",
                    container_path.display(),
                    demo.destination
                )
            });
        let in_repo = repo().join("demo").join(rest);
        assert!(
            in_repo.exists(),
            "{what}: {} does not exist",
            in_repo.display()
        );
        in_repo
    };
    inside(&settings.yaml_dir, "TOWERHOOK_YAML_DIR");
    let secrets = settings.secrets_file.as_deref().expect(
        "Dockerfile: TOWERHOOK_SECRETS_FILE is not set (the demo's signed webhook needs it)",
    );
    inside(secrets, "TOWERHOOK_SECRETS_FILE");
}

#[test]
fn dockerfile_copies_only_what_the_context_holds() {
    let dockerfile = Dockerfile::load();
    for stage in &dockerfile.stages {
        for copy in stage.copies().into_iter().filter(|c| c.from.is_none()) {
            for source in &copy.sources {
                assert!(
                    repo().join(relative(source)).exists(),
                    "Dockerfile: COPY {source}: no such file in the repository"
                );
                if let Some(pattern) = dockerignored(source) {
                    panic!("Dockerfile: COPY {source}, but .dockerignore excludes it ({pattern})");
                }
            }
        }
    }
    for excluded in ["target", ".python-packages", "data", ".git", ".env"] {
        assert!(
            dockerignored(excluded).is_some(),
            ".dockerignore does not exclude {excluded}"
        );
    }
}

// ---------------------------------------------------------------- health probe

/// Answers one request with `status` and `body`; returns the port and the request line.
fn one_shot_server(
    status: &'static str,
    body: &'static str,
) -> (u16, std::thread::JoinHandle<String>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let handle = std::thread::spawn(move || {
        // Gives up after 10 s, so that a probe that never connects fails the test
        // instead of hanging it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let stream = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if std::time::Instant::now() > deadline {
                        return "(no connection)".to_string();
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        stream.set_nonblocking(false).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request_line = String::new();
        reader.read_line(&mut request_line).unwrap();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                break;
            }
        }
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        request_line.trim_end().to_string()
    });
    (port, handle)
}

fn probe(listen: &str, path: &str) -> std::process::Output {
    Command::new("bash")
        .arg(repo().join("deploy/healthcheck.sh"))
        .arg(path)
        .env("TOWERHOOK_LISTEN", listen)
        .output()
        .expect("cannot run bash")
}

#[test]
fn health_probe_passes_on_200_and_fails_with_the_reason_otherwise() {
    let (port, server) = one_shot_server("200 OK", r#"{"status": "ready"}"#);
    let output = probe(&format!("0.0.0.0:{port}"), "/readyz");
    assert_eq!(server.join().unwrap(), "GET /readyz HTTP/1.1");
    assert!(
        output.status.success(),
        "the probe failed on 200: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let (port, server) = one_shot_server(
        "503 Service Unavailable",
        r#"{"status": "not ready", "problems": ["definitions not loaded yet"]}"#,
    );
    let output = probe(&format!("0.0.0.0:{port}"), "/readyz");
    server.join().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the probe passed on 503");
    assert!(
        stderr.contains("503") && stderr.contains("definitions not loaded yet"),
        "the probe should say why: {stderr}"
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let output = probe(&format!("127.0.0.1:{port}"), "/healthz");
    assert!(
        !output.status.success(),
        "the probe passed with nothing listening"
    );
}

// ---------------------------------------------------------------------- systemd

fn unit() -> BTreeMap<String, Vec<String>> {
    ini(&read("deploy/towerhook.service"), &['#', ';'])
        .remove("Service")
        .expect("deploy/towerhook.service: no [Service] section")
}

fn unit_value(unit: &BTreeMap<String, Vec<String>>, key: &str) -> String {
    unit.get(key)
        .and_then(|v| v.last())
        .cloned()
        .unwrap_or_else(|| panic!("deploy/towerhook.service: no {key}="))
}

/// Environment= and the example EnvironmentFile, as systemd hands them to towerhook.
fn unit_env(unit: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for assignment in unit.get("Environment").into_iter().flatten() {
        for word in assignment.split_whitespace() {
            let (k, v) = word.trim_matches('"').split_once('=').unwrap();
            env.insert(k.to_string(), v.to_string());
        }
    }
    env.extend(env_file("deploy/towerhook.env.example"));
    env
}

#[test]
fn systemd_unit_serves_restarts_and_outlasts_the_grace_period() {
    let unit = unit();
    assert_eq!(unit_value(&unit, "Type"), "exec");
    let user = unit_value(&unit, "User");
    assert!(user != "root" && user != "0", "the unit runs as root");
    let exec = unit_value(&unit, "ExecStart");
    let words: Vec<&str> = exec.split_whitespace().collect();
    assert!(
        words[0].starts_with('/') && words[0].ends_with("/towerhook"),
        "ExecStart {exec}: an absolute path to towerhook"
    );
    assert!(
        words.contains(&"serve"),
        "ExecStart {exec} does not run `serve`"
    );
    let config = words
        .iter()
        .position(|w| *w == "--config")
        .map(|i| words[i + 1])
        .expect("ExecStart: no --config");
    assert!(
        config.ends_with("/towerhook.toml"),
        "ExecStart --config {config}"
    );
    let env_file = unit_value(&unit, "EnvironmentFile");
    assert!(env_file.trim_start_matches('-').ends_with("/towerhook.env"));

    let restart = unit_value(&unit, "Restart");
    assert!(
        matches!(restart.as_str(), "on-failure" | "always" | "on-abnormal"),
        "Restart={restart} does not restart a crashed towerhook"
    );
    let grace = load_settings(
        "deploy/towerhook.toml with the unit's environment",
        Some(&repo().join("deploy/towerhook.toml")),
        &unit_env(&unit),
    )
    .shutdown_grace_secs;
    let stop = duration_secs(&unit_value(&unit, "TimeoutStopSec"));
    assert!(
        stop > grace,
        "TimeoutStopSec={stop}s: towerhook takes up to shutdown_grace_secs = {grace} s to \
         finish calls in flight, then systemd kills it"
    );
    assert_eq!(unit_value(&unit, "KillSignal"), "SIGTERM");

    let state = unit_value(&unit, "StateDirectory");
    let data_dir = unit_env(&unit)
        .get("TOWERHOOK_DATA_DIR")
        .cloned()
        .expect("the unit does not set TOWERHOOK_DATA_DIR");
    assert_eq!(
        data_dir,
        format!("/var/lib/{state}"),
        "TOWERHOOK_DATA_DIR must be the StateDirectory (/var/lib/{state})"
    );
    if unit_value(&unit, "ProtectSystem") == "strict" {
        let writable = unit.get("ReadWritePaths").into_iter().flatten().any(|p| {
            p.split_whitespace()
                .any(|p| p.trim_start_matches('-') == data_dir)
        });
        assert!(
            writable || !state.is_empty(),
            "ProtectSystem=strict without the data directory writable"
        );
    }
    assert!(truthy(&unit_value(&unit, "NoNewPrivileges")));
    assert!(!unit_value(&unit, "MemoryMax").is_empty());
}

#[test]
fn systemd_settings_file_and_environment_are_accepted_by_the_settings_loader() {
    let unit = unit();
    let env = unit_env(&unit);
    let toml = repo().join("deploy/towerhook.toml");
    let settings = load_settings(
        "deploy/towerhook.toml with the unit's environment",
        Some(&toml),
        &env,
    );
    assert_eq!(settings.source, SourceKind::Odoo);
    assert_eq!(settings.log_sink, SinkKind::Odoo);
    assert_eq!(
        settings.data_dir,
        PathBuf::from(env["TOWERHOOK_DATA_DIR"].as_str()),
        "data_dir"
    );

    // The nginx snippet proxies to towerhook's listen address, and towerhook trusts the
    // address nginx connects from.
    let snippet = nginx_parse("deploy/nginx.conf", &read("deploy/nginx.conf"));
    let scope = route("deploy/nginx.conf", &snippet, "/cetmix_tower_webhooks/x");
    let (host, port) = scope.upstream(&snippet);
    let listen: SocketAddr = settings.listen.parse().unwrap();
    assert_eq!(
        (host.parse::<IpAddr>().ok(), port),
        (Some(listen.ip()), listen.port()),
        "deploy/nginx.conf proxies to {host}:{port}, towerhook.toml listens on {listen}"
    );
    let nginx_ip: IpAddr = host.parse().unwrap();
    assert!(
        settings
            .trusted_proxies
            .iter()
            .any(|t| IpList::parse(t).contains(nginx_ip)),
        "towerhook.toml: trusted_proxies {:?} does not include nginx's address {nginx_ip}",
        settings.trusted_proxies
    );
    assert_eq!(
        scope.header("X-Forwarded-For").as_deref(),
        Some("$proxy_add_x_forwarded_for"),
        "deploy/nginx.conf: X-Forwarded-For"
    );
    assert!(
        scope.max_body() >= settings.max_body_bytes as u64,
        "deploy/nginx.conf: client_max_body_size below towerhook's max_body_bytes"
    );
}

#[test]
fn every_commented_key_of_the_example_settings_file_is_a_real_setting() {
    // `# key = value` lines document the other settings; uncommented, they must load too.
    let text = read("deploy/towerhook.toml");
    let active: BTreeSet<String> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_string()))
        .collect();
    let mut uncommented = String::new();
    let mut documented = 0;
    for line in text.lines() {
        let Some(rest) = line.trim_start().strip_prefix('#') else {
            uncommented.push_str(line);
            uncommented.push('\n');
            continue;
        };
        let rest = rest.trim_start();
        let Some((key, _)) = rest.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            || active.contains(key)
        {
            continue;
        }
        documented += 1;
        uncommented.push_str(rest);
        uncommented.push('\n');
    }
    assert!(
        documented > 10,
        "deploy/towerhook.toml documents only {documented} other keys"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("towerhook.toml");
    std::fs::write(&file, &uncommented).unwrap();
    load_settings(
        "deploy/towerhook.toml with every commented key uncommented",
        Some(&file),
        &unit_env(&unit()),
    );
}

// ------------------------------------------------------------ the helpers themselves

#[test]
fn helpers_read_what_they_claim() {
    let vars: BTreeMap<String, String> = [
        ("A".to_string(), "1".to_string()),
        ("E".to_string(), String::new()),
    ]
    .into();
    assert_eq!(
        interpolate("${A}-${B:-x}-${E:-y}-${E-z}-$$-$A", &vars).unwrap(),
        "1-x-y--$-1"
    );
    assert!(
        interpolate("${B:?needed}", &vars)
            .unwrap_err()
            .contains("needed")
    );
    assert!(interpolate("${E:?needed}", &vars).is_err());
    assert_eq!(interpolate("${E?needed}", &vars).unwrap(), "");
    assert_eq!(
        variables_in("${A:?x} $B $$C ${D:-${F}}"),
        ["A", "B", "D", "F"].map(String::from).into()
    );
    assert!(ignore_matches("target/", "target"));
    assert!(ignore_matches(
        "**/__pycache__",
        "python_sandbox/x/__pycache__"
    ));
    assert!(ignore_matches(".env.*", ".env.example"));
    assert!(!ignore_matches(".env", ".envrc"));
    assert!(!ignore_matches("data/", "demo"));
    assert!(in_network(
        "172.30.0.10".parse().unwrap(),
        ipv4_network("172.30.0.0/24")
    ));
    assert!(!in_network(
        "172.30.1.10".parse().unwrap(),
        ipv4_network("172.30.0.0/24")
    ));
    assert_eq!(duration_secs("1m30s"), 90.0);
    assert_eq!(duration_secs("45"), 45.0);

    let nginx = nginx_parse(
        "test",
        r#"
        upstream app { server app:9000; }
        server {
            listen 80;
            client_max_body_size 4m;
            proxy_set_header Host $host;
            location / { proxy_pass http://app; }
            location /a/ { set $u http://svc:81; proxy_pass $u; proxy_set_header X-A "1"; }
            location = /a/b { proxy_pass http://exact:82/; client_max_body_size 0; }
        }
        resolver 127.0.0.11;
        "#,
    );
    assert_eq!(
        route("t", &nginx, "/x").upstream(&nginx),
        ("app".into(), 9000)
    );
    let a = route("t", &nginx, "/a/c");
    assert_eq!(a.upstream(&nginx), ("svc".into(), 81));
    assert_eq!(
        a.header("Host"),
        None,
        "proxy_set_header at the location replaces the server's"
    );
    assert_eq!(a.max_body(), 4 * 1024 * 1024);
    let exact = route("t", &nginx, "/a/b");
    assert_eq!(exact.upstream(&nginx), ("exact".into(), 82));
    assert_eq!(exact.max_body(), u64::MAX);
    assert_eq!(
        route("t", &nginx, "/").header("Host").as_deref(),
        Some("$host")
    );
}
